//! The commerce domain crate: pure domain types, narrow ports, use-case services, AWS and local adapters,
//! and the one HTTP mapping every function shares.

pub mod adapters;
pub mod api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod json;
pub mod jwt;
pub mod ports;
pub mod services;
pub mod telemetry;

pub use error::DomainError;
