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
}
