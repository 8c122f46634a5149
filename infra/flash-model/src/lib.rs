//! A model of the flash-sale pipeline (docs/FLASH_SALES.md): buyers through the HTTP API's throttles into the
//! entry function, the FIFO waiting room, the admission worker's batches through the sharded stock gate,
//! status polls, with AWS's documented limits on every hop and DynamoDB's per-partition capacity accounted per
//! second. Its parameters come from template.yaml; its latencies from a profile measured on the local stack or
//! from AWS's documented typical latencies.

pub mod config;
pub mod report;
pub mod sim;
pub mod template;

/// Runs one sale.
pub fn simulate(cfg: &config::Config) -> report::Report {
    sim::Sim::new(cfg).run()
}
