//! The local HTTP API: API Gateway HTTP API (payload format 2.0) in front of the local Lambda service.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::lambda::Lambdas;
use crate::plan::Plan;

/// Serves the HTTP API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    _listener: TcpListener,
    _plan: Arc<Plan>,
    _lambdas: Lambdas,
    _shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("HTTP gateway not implemented yet")
}
