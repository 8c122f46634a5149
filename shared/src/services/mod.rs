//! Use cases, generic over ports.
