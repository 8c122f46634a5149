//! Demo users: shopper, shopper2, seller, seller2 and admin (`<name>@example.com`, password
//! [`DEMO_PASSWORD`]) in the groups shoppers / sellers / admins, with fixed `sub`s so that sample events and
//! seed data can name them; any `shopper-<n>` is created on its first token request.
//!
//! moto gives a user the `sub` of its own generator and ignores a `sub` passed at AdminCreateUser (it
//! overwrites the attribute). Its generator can be seeded (`/moto-api/seed`), so each demo user is created
//! right after seeding with a number derived from its name: the `sub` is then the same on every start, and
//! is checked against [`DEMO_USERS`].

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, MessageActionType};
use aws_sdk_cognitoidentityprovider::Client;
use sha2::{Digest, Sha256};

use crate::moto::Moto;
use crate::provision::UserPoolInfo;

/// Every demo user's password.
pub const DEMO_PASSWORD: &str = "Passw0rd!demo";

/// (name, group, sub) of the fixed demo users.
pub const DEMO_USERS: [(&str, &str, &str); 5] = [
    ("shopper", "shoppers", "47a6c574-7e9a-4982-bc09-aa2239f94310"),
    ("shopper2", "shoppers", "23b860f4-612e-440d-b49a-3a94fed18aa1"),
    ("seller", "sellers", "9401d12a-b391-48d2-acd7-8b81507ee8f0"),
    ("seller2", "sellers", "c8aad468-ff33-4a63-9074-c888acf9888d"),
    ("admin", "admins", "f287d242-cae6-432c-bec2-9562999eee7a"),
];

/// A demo user as created in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    pub name: String,
    pub email: String,
    pub group: String,
    /// The `sub` claim of the user's tokens (a seller's id).
    pub sub: String,
}

/// The demo users of a running stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoUsers {
    pub users: Vec<DemoUser>,
}

impl DemoUsers {
    /// Every user of `group`.
    pub fn in_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a DemoUser> + 'a {
        self.users.iter().filter(move |u| u.group == group)
    }
}

/// The email of demo user `name`.
pub fn email(name: &str) -> String {
    format!("{name}@example.com")
}

/// The group of a demo user name: a fixed user's, or shoppers for `shopper-<n>`; `None` for any other name.
pub fn group_of(name: &str) -> Option<&'static str> {
    if let Some((_, group, _)) = DEMO_USERS.iter().find(|(n, _, _)| *n == name) {
        return Some(group);
    }
    let n = name.strip_prefix("shopper-")?;
    (!n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit())).then_some("shoppers")
}

fn seed_for(name: &str) -> u64 {
    let digest = Sha256::digest(format!("commerce-local demo user {name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes) >> 1
}

fn username(pool: &UserPoolInfo, name: &str) -> String {
    if pool.username_is_email {
        email(name)
    } else {
        name.to_string()
    }
}

/// Creates the fixed demo users in `pool` (a fresh pool: none of them exists yet).
pub async fn create_demo_users(cognito: &Client, moto: &Moto, pool: &UserPoolInfo) -> Result<DemoUsers> {
    let mut users = Vec::new();
    for (name, group, expected) in DEMO_USERS {
        moto.seed_random(seed_for(name)).await?;
        let sub =
            create_user(cognito, pool, name, group).await.with_context(|| format!("creating demo user {name}"))?;
        if sub != expected {
            bail!("demo user {name} got sub {sub}, expected {expected}: has the emulator's id generator changed?");
        }
        users.push(DemoUser { name: name.to_string(), email: email(name), group: group.to_string(), sub });
    }
    moto.seed_random(u64::from(ulid::Ulid::new().random() as u32)).await?;
    Ok(DemoUsers { users })
}

/// Creates one user with a permanent password and verified email in `group`; returns its `sub`.
async fn create_user(cognito: &Client, pool: &UserPoolInfo, name: &str, group: &str) -> Result<String> {
    let username = username(pool, name);
    let created = cognito
        .admin_create_user()
        .user_pool_id(&pool.pool_id)
        .username(&username)
        .message_action(MessageActionType::Suppress)
        .user_attributes(AttributeType::builder().name("email").value(email(name)).build()?)
        .user_attributes(AttributeType::builder().name("email_verified").value("true").build()?)
        .send()
        .await
        .map_err(sdk_error)?;
    let sub = created
        .user
        .and_then(|u| u.attributes)
        .and_then(|attrs| attrs.into_iter().find(|a| a.name == "sub").and_then(|a| a.value))
        .ok_or_else(|| anyhow!("AdminCreateUser returned no sub"))?;
    cognito
        .admin_set_user_password()
        .user_pool_id(&pool.pool_id)
        .username(&username)
        .password(DEMO_PASSWORD)
        .permanent(true)
        .send()
        .await
        .map_err(sdk_error)?;
    cognito
        .admin_add_user_to_group()
        .user_pool_id(&pool.pool_id)
        .username(&username)
        .group_name(group)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(sub)
}

/// A fresh ID token for demo user `name`; a `shopper-<n>` that does not exist yet is created first.
pub async fn id_token(cognito: &Client, pool: &UserPoolInfo, name: &str) -> Result<String> {
    let group = group_of(name).ok_or_else(|| {
        anyhow!("unknown demo user {name}: use shopper, shopper2, seller, seller2, admin or shopper-<n>")
    })?;
    let username = username(pool, name);
    if name.starts_with("shopper-") {
        let exists = cognito.admin_get_user().user_pool_id(&pool.pool_id).username(&username).send().await;
        match exists {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_user_not_found_exception()) => {
                create_user(cognito, pool, name, group).await?;
            }
            Err(e) => return Err(sdk_error(e)),
        }
    }
    let auth = cognito
        .initiate_auth()
        .client_id(&pool.client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", &username)
        .auth_parameters("PASSWORD", DEMO_PASSWORD)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("signing in {name}"))?;
    auth.authentication_result
        .and_then(|r| r.id_token)
        .ok_or_else(|| anyhow!("sign-in of {name} returned no ID token (challenge {:?})", auth.challenge_name))
}

fn sdk_error<E: std::error::Error + Send + Sync + 'static>(
    e: aws_sdk_cognitoidentityprovider::error::SdkError<E>,
) -> anyhow::Error {
    anyhow!("{}", aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_name_is_a_demo_user_should_know_its_group() {
        assert_eq!(group_of("seller2"), Some("sellers"));
        assert_eq!(group_of("admin"), Some("admins"));
        assert_eq!(group_of("shopper-17"), Some("shoppers"));
        assert_eq!(group_of("shopper-"), None);
        assert_eq!(group_of("shopper-x"), None);
        assert_eq!(group_of("root"), None);
    }

    #[test]
    fn when_seeds_are_derived_should_differ_per_user_and_fit_an_i64() {
        let seeds: std::collections::BTreeSet<u64> = DEMO_USERS.iter().map(|(n, _, _)| seed_for(n)).collect();
        assert_eq!(seeds.len(), DEMO_USERS.len());
        assert!(seeds.iter().all(|s| *s <= i64::MAX as u64));
    }
}
