//! In-memory carts with the same version conditions as the DynamoDB adapter, the fake of `CartStore`.

use commerce_app::ports::CartStore;
use commerce_domain::cart::Cart;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    carts: HashMap<String, Cart>,
    shoppers: HashMap<String, String>,
}

/// The in-memory cart store.
#[derive(Debug, Default)]
pub struct InMemoryCarts {
    state: Mutex<State>,
}

impl InMemoryCarts {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn may_write(state: &State, cart: &Cart) -> bool {
    match state.carts.get(&cart.cart_id) {
        None => cart.version == 0,
        Some(stored) => stored.version == cart.version,
    }
}

fn stored(cart: &Cart) -> Cart {
    let mut next = cart.clone();
    next.version += 1;
    next
}

impl CartStore for InMemoryCarts {
    async fn get_cart(&self, cart_id: &str) -> Result<Option<Cart>> {
        Ok(self.lock().carts.get(cart_id).cloned())
    }

    async fn shopper_cart_id(&self, user_id: &str) -> Result<Option<String>> {
        Ok(self.lock().shoppers.get(user_id).cloned())
    }

    async fn create_cart(&self, cart: &Cart) -> Result<()> {
        let mut state = self.lock();
        if state.carts.contains_key(&cart.cart_id) {
            return Err(DomainError::conflict(ErrorCode::CartExists, "a cart with this id exists"));
        }
        state.carts.insert(cart.cart_id.clone(), stored(cart));
        Ok(())
    }

    async fn create_shopper_cart(&self, user_id: &str, cart: &Cart, replacing: Option<&str>) -> Result<bool> {
        let mut state = self.lock();
        if state.shoppers.get(user_id).map(String::as_str) != replacing || !may_write(&state, cart) {
            return Ok(false);
        }
        state.shoppers.insert(user_id.to_owned(), cart.cart_id.clone());
        state.carts.insert(cart.cart_id.clone(), stored(cart));
        Ok(true)
    }

    async fn save_cart(&self, cart: &Cart) -> Result<bool> {
        let mut state = self.lock();
        if !may_write(&state, cart) {
            return Ok(false);
        }
        state.carts.insert(cart.cart_id.clone(), stored(cart));
        Ok(true)
    }

    async fn save_merge(&self, shopper: &Cart, guest: &Cart) -> Result<bool> {
        let mut state = self.lock();
        if !may_write(&state, shopper) || !may_write(&state, guest) {
            return Ok(false);
        }
        state.carts.insert(shopper.cart_id.clone(), stored(shopper));
        state.carts.insert(guest.cart_id.clone(), stored(guest));
        Ok(true)
    }
}

/// A `CallerResolver` for tests: bearer tokens mapped to callers; any other token is refused (401).
#[derive(Debug, Default, Clone)]
pub struct FixedCallers(pub HashMap<String, commerce_domain::auth::Caller>);

impl FixedCallers {
    /// Adds a shopper whose bearer token is `token`.
    pub fn shopper(mut self, token: &str, user_id: &str) -> Self {
        let caller = commerce_domain::auth::Caller {
            user_id: user_id.to_owned(),
            email: None,
            roles: vec![commerce_domain::auth::Role::Shopper],
        };
        self.0.insert(token.to_owned(), caller);
        self
    }
}

impl commerce_app::services::cart::CallerResolver for FixedCallers {
    async fn resolve(&self, authorization: Option<&str>) -> Result<Option<commerce_domain::auth::Caller>> {
        let Some(header) = authorization else { return Ok(None) };
        let token = commerce_aws::jwt::bearer_token(header).unwrap_or_default();
        self.0.get(token).cloned().map(Some).ok_or(DomainError::Unauthenticated)
    }
}
