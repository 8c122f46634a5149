//! Opaque identifiers. ULIDs: unique, sortable by creation time, never a key layout.

/// A new opaque id with a short type prefix, e.g. `prd_01J...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Whether a string looks like an id we issued with this prefix (cheap rejection of junk before any I/O).
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_')).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// SKUs: 1-64 of upper-case letters, digits, `-`, `_`, `.`; starting with a letter or digit.
pub fn is_valid_sku(sku: &str) -> bool {
    let bytes = sku.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
}

/// The string side of a parsed value (`$name::parse(&str) -> Result<$name, DomainError>` given): read as a
/// `&str`, shown and stored as the plain string, and deserialized only through `parse`.
macro_rules! parsed_string {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::DomainError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::DomainError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An id of ours, typed by what it names. Parsed once, where it enters (a path, a body): a malformed one
/// names nothing we issued, so it is the type's `malformed` error (404 for most: no hint of a key layout),
/// and a value of the type is known well-formed after. Stored and serialized as the plain string.
macro_rules! issued_id {
    ($(#[$doc:meta])* $name:ident, $prefix:expr, $malformed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id's type prefix (`<prefix>_<ulid>`).
            pub const PREFIX: &'static str = $prefix;

            /// A new id.
            pub fn generate() -> Self {
                Self(new_id($prefix))
            }

            /// The id, if `raw` is one of ours; else the type's error.
            pub fn parse(raw: &str) -> Result<Self, crate::DomainError> {
                if is_valid($prefix, raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err($malformed)
                }
            }
        }

        parsed_string!($name);
    };
}

issued_id!(
    /// A product (`prd_...`).
    ProductId,
    "prd",
    crate::DomainError::not_found("product")
);
issued_id!(
    /// A seller's shipping method (`shm_...`).
    ShippingMethodId,
    "shm",
    crate::DomainError::not_found("shipping method")
);
issued_id!(
    /// A promotion (`prm_...`).
    PromotionId,
    "prm",
    crate::DomainError::not_found("promotion")
);
issued_id!(
    /// A cart's shipping quote (`qt_...`).
    QuoteId,
    "qt",
    crate::DomainError::not_found("quote")
);
issued_id!(
    /// An order (`ord_...`).
    OrderId,
    "ord",
    crate::DomainError::not_found("order")
);
issued_id!(
    /// A product review (`rev_...`).
    ReviewId,
    "rev",
    crate::DomainError::not_found("review")
);
issued_id!(
    /// A cart (`cart_...`).
    CartId,
    "cart",
    crate::DomainError::not_found("cart")
);
issued_id!(
    /// A flash sale (`fs_...`).
    SaleId,
    "fs",
    crate::DomainError::not_found("flash sale")
);
issued_id!(
    /// A flash-sale ticket, the shopper's entry (`ftk_...`).
    TicketId,
    "ftk",
    crate::DomainError::not_found("entry")
);
issued_id!(
    /// A warehouse (`wh_<ulid>`, or a short seeded slug such as `wh_east`); a malformed one is 400 naming
    /// `warehouse_id`.
    WarehouseId,
    "wh",
    crate::DomainError::invalid_parameter("warehouse_id", "is not a warehouse id")
);

/// A SKU as the catalog defines it (`catalog::is_valid_sku`): 1-64 upper-case letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit. One rule; where the SKU stands says how a break answers: in a path or
/// query `Sku::parse` is 400 naming `sku`, in a body `Sku::parse_field` is 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

/// Why a SKU is malformed, as every SKU error says it.
pub const SKU_RULE: &str = "must be 1-64 upper-case letters, digits, '-', '_' or '.'";

impl Sku {
    /// A SKU from a path or query parameter: 400 `invalid_parameter` naming `sku` when malformed.
    pub fn parse(raw: &str) -> Result<Self, crate::DomainError> {
        Self::checked(raw).ok_or_else(|| crate::DomainError::invalid_parameter("sku", SKU_RULE))
    }

    /// A SKU from a request body: 422 `validation_failed` naming `field` when malformed.
    pub fn parse_field(field: &str, raw: &str) -> Result<Self, crate::DomainError> {
        Self::checked(raw).ok_or_else(|| crate::DomainError::validation(field, SKU_RULE))
    }

    fn checked(raw: &str) -> Option<Self> {
        is_valid_sku(raw).then(|| Self(raw.to_owned()))
    }
}

parsed_string!(Sku);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_validation() {
        let id = new_id("prd");
        assert!(is_valid("prd", &id));
        assert!(!is_valid("cat", &id));
        assert!(!is_valid("prd", "prd_../../etc"));
    }

    #[test]
    fn typed_ids_parse_once_and_answer_their_own_error() {
        let id = OrderId::generate();
        assert_eq!(OrderId::parse(&id).unwrap(), id);
        assert!(matches!(OrderId::parse("prd_1"), Err(crate::DomainError::NotFound { entity: "order" })));
        assert!(matches!(SaleId::parse("fs_../x"), Err(crate::DomainError::NotFound { entity: "flash sale" })));
        assert!(matches!(
            WarehouseId::parse("east"),
            Err(crate::DomainError::InvalidParameter { field, .. }) if field == "warehouse_id"
        ));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!(serde_json::from_str::<OrderId>("\"ord_../x\"").is_err());
        assert!(serde_json::from_str::<Sku>("\"lower case\"").is_err());
        assert_eq!(serde_json::from_str::<Sku>("\"TS-1\"").unwrap().as_str(), "TS-1");
    }

    #[test]
    fn a_sku_has_one_rule_and_its_place_says_the_status() {
        assert_eq!(Sku::parse("TSHIRT-RED-M").unwrap().as_str(), "TSHIRT-RED-M");
        for bad in ["", "lower", "a#b", "-LEAD", &"X".repeat(65)] {
            assert!(
                matches!(Sku::parse(bad), Err(crate::DomainError::InvalidParameter { field, .. }) if field == "sku")
            );
            assert!(matches!(
                Sku::parse_field("lines[0].sku", bad),
                Err(crate::DomainError::Validation { field, .. }) if field == "lines[0].sku"
            ));
        }
    }
}
