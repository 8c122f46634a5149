//! Who is calling: a `Caller` with roles from the Cognito groups, built from verified JWT claims. Reading the
//! claims from a request is the Lambda crate's `auth`; verifying a token is the AWS crate's `jwt`.

use crate::error::DomainError;
use std::collections::HashMap;

/// A Cognito group, as a role in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Shopper,
    Seller,
    Admin,
}

impl Role {
    /// The Cognito group name for the role.
    pub fn group(self) -> &'static str {
        match self {
            Role::Shopper => "shoppers",
            Role::Seller => "sellers",
            Role::Admin => "admins",
        }
    }

    fn from_group(name: &str) -> Option<Self> {
        match name {
            "shoppers" => Some(Role::Shopper),
            "sellers" => Some(Role::Seller),
            "admins" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The stable user id (`sub`).
    pub user_id: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// Sellers and admins may use seller routes; anyone else gets 403.
    pub fn require_seller(&self) -> Result<(), DomainError> {
        if self.has(Role::Seller) || self.is_admin() {
            Ok(())
        } else {
            Err(DomainError::forbidden("seller role required"))
        }
    }

    pub fn require_admin(&self) -> Result<(), DomainError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(DomainError::forbidden("admin role required"))
        }
    }

    /// Builds a caller from JWT claims as API Gateway passes them (every value a string).
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self, DomainError> {
        let user_id = claims.get("sub").filter(|s| !s.is_empty()).cloned().ok_or(DomainError::Unauthenticated)?;
        let roles = claims
            .get("cognito:groups")
            .map(|raw| parse_groups(raw).iter().filter_map(|g| Role::from_group(g)).collect())
            .unwrap_or_default();
        Ok(Self { user_id, email: claims.get("email").cloned(), roles })
    }
}

/// API Gateway renders array claims as `[a b]`; tools and tests also send JSON arrays or comma lists.
pub fn parse_groups(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(trimmed) {
        return list;
    }
    trimmed
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_group_renderings() {
        assert_eq!(parse_groups("[sellers admins]"), vec!["sellers", "admins"]);
        assert_eq!(parse_groups(r#"["sellers","admins"]"#), vec!["sellers", "admins"]);
        assert_eq!(parse_groups("shoppers"), vec!["shoppers"]);
        assert!(parse_groups("[]").is_empty());
    }

    #[test]
    fn when_shopper_requires_seller_should_be_forbidden() {
        let claims = HashMap::from([
            ("sub".to_string(), "u1".to_string()),
            ("cognito:groups".to_string(), "[shoppers]".to_string()),
        ]);
        let caller = Caller::from_claims(&claims).unwrap();
        assert!(matches!(caller.require_seller(), Err(DomainError::Forbidden(_))));
    }

    #[test]
    fn when_no_sub_should_be_unauthenticated() {
        let claims = HashMap::from([("cognito:groups".to_string(), "[admins]".to_string())]);
        assert!(matches!(Caller::from_claims(&claims), Err(DomainError::Unauthenticated)));
    }
}
