//! Event source mappings, as Lambda runs them: SQS queues and DynamoDB streams polled into batches that
//! invoke a function, and schedules that invoke one on an interval. Every loop stops promptly when the
//! shutdown token is cancelled.

pub mod schedule;
pub mod sqs;
pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lambda::Lambdas;
use crate::plan::Plan;

/// The stream pollers that have not yet read every shard of their stream to its end once. Pollers start after
/// the seed is written, so when none is left every seeded record has been delivered (the demo catalog is
/// searchable): the stack says ready only then.
#[derive(Clone)]
pub struct Backlog(Arc<watch::Sender<usize>>);

impl Backlog {
    fn new(pollers: usize) -> Self {
        Self(Arc::new(watch::Sender::new(pollers)))
    }

    /// One poller read every shard to its end and delivered what it read.
    fn caught_up(&self) {
        self.0.send_modify(|left| *left = left.saturating_sub(1));
    }

    /// Waits until every stream poller has caught up once.
    pub async fn drained(&self) {
        let mut left = self.0.subscribe();
        let _ = left.wait_for(|n| *n == 0).await;
    }
}

/// Starts every event source of `plan`: one task per SQS worker, stream and schedule.
pub fn start(
    plan: &Plan,
    lambdas: Lambdas,
    aws: aws_config::SdkConfig,
    shutdown: CancellationToken,
) -> (Vec<JoinHandle<()>>, Backlog) {
    let region = aws.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_string());
    let mut tasks = Vec::new();
    if !plan.sqs_sources.is_empty() {
        let client = aws_sdk_sqs::Client::new(&aws);
        for source in &plan.sqs_sources {
            tasks.extend(sqs::start(source.clone(), &region, client.clone(), lambdas.clone(), shutdown.clone()));
        }
    }
    let backlog = Backlog::new(plan.stream_sources.len());
    if !plan.stream_sources.is_empty() {
        let streams = aws_sdk_dynamodbstreams::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        for source in &plan.stream_sources {
            let poller = streams::StreamPoller::new(
                source.clone(),
                &region,
                streams.clone(),
                sqs.clone(),
                lambdas.clone(),
                shutdown.clone(),
            );
            tasks.push(tokio::spawn(poller.run(backlog.clone())));
        }
    }
    let interval_override = schedule::interval_override();
    for source in &plan.schedules {
        tasks.push(tokio::spawn(schedule::run(
            source.clone(),
            interval_override,
            region.clone(),
            lambdas.clone(),
            shutdown.clone(),
        )));
    }
    tracing::info!(
        sqs = plan.sqs_sources.len(),
        streams = plan.stream_sources.len(),
        schedules = plan.schedules.len(),
        "event sources started"
    );
    (tasks, backlog)
}

/// Sleeps for `duration` unless `shutdown` is cancelled first; returns false when it was.
async fn pause(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests;
