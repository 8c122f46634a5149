//! Event source mappings: SQS and DynamoDB Streams pollers and schedules that invoke local functions.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lambda::Lambdas;
use crate::plan::Plan;

/// Starts one task per event source in `plan`; each stops when `shutdown` is cancelled.
pub fn start(
    _plan: &Plan,
    _lambdas: Lambdas,
    _aws: aws_config::SdkConfig,
    _shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    Vec::new()
}
