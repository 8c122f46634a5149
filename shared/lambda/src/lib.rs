//! The Lambda edge: HTTP mapping (`api`), the caller from the authorizer's claims (`auth`), typed
//! configuration read once (`config`), composition roots several functions share (`wiring`), the answers of
//! idempotent requests and Step Functions task failures, and telemetry: logs (`telemetry`) and metrics
//! (`metrics`). Functions depend on this crate, the application and the adapters; nothing depends on it.

pub mod api;
pub mod auth;
pub mod batch;
pub mod config;
pub mod idempotency;
pub mod inventory;
pub mod metrics;
pub mod saga;
pub mod telemetry;
pub mod wiring;

pub use commerce_domain::DomainError;
