//! Pure, synchronous domain types. No I/O, no SDK types.

pub mod ids;
pub mod money;
