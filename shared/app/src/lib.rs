//! The application: ports (narrow async traits, one per capability and IAM permission set) and the use cases
//! over them. Depends on the domain only; the adapters implement its ports, the Lambda edge calls its use cases.

pub mod ports;
pub mod services;
