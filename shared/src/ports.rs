//! Narrow async traits, one per capability, matching the IAM permissions a function is given.
