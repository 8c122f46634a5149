//! Schedules: invoke a function every `interval` (the template's `rate(...)`) with the declared input or an
//! EventBridge "Scheduled Event". `LOCAL_SCHEDULE_INTERVAL_SECS` overrides every interval (tests use it to run
//! sweepers quickly).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::lambda::{Invocation, Lambdas, ACCOUNT_ID};
use crate::plan::SchedulePlan;

/// `LOCAL_SCHEDULE_INTERVAL_SECS`, if set to a positive number of seconds (fractions allowed).
pub fn interval_override() -> Option<Duration> {
    let raw = std::env::var("LOCAL_SCHEDULE_INTERVAL_SECS").ok()?;
    match raw.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Some(Duration::from_secs_f64(secs)),
        _ => {
            tracing::warn!(value = %raw, "LOCAL_SCHEDULE_INTERVAL_SECS ignored: not a positive number");
            None
        }
    }
}

/// Invokes the schedule's function every interval, the first time one interval after start, until shutdown.
pub async fn run(
    source: SchedulePlan,
    interval_override: Option<Duration>,
    region: String,
    lambdas: Lambdas,
    shutdown: CancellationToken,
) {
    let every = interval_override.unwrap_or(source.interval).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::debug!(function = %source.function, every_ms = every.as_millis() as u64, "schedule started");
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let payload = match &source.input {
            Some(input) => input.clone(),
            None => scheduled_event(&source.function, &region),
        };
        let outcome = tokio::select! {
            outcome = lambdas.invoke(&source.function, Bytes::from(payload.to_string())) => outcome,
            _ = shutdown.cancelled() => return,
        };
        match outcome {
            Ok(Invocation::Success(_)) => {
                tracing::debug!(function = %source.function, "scheduled invocation done")
            }
            Ok(Invocation::FunctionError { error_type, .. }) => {
                tracing::warn!(function = %source.function, %error_type, "scheduled invocation failed")
            }
            Err(e) => {
                tracing::warn!(function = %source.function, error = %e, "scheduled invocation not run")
            }
        }
    }
}

/// The event EventBridge sends for a schedule rule.
pub fn scheduled_event(function: &str, region: &str) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{ACCOUNT_ID}:rule/commerce-local-{function}-schedule")],
        "detail": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduled_event_deserializes_as_an_eventbridge_event() {
        let event = scheduled_event("Sweeper", "us-east-1");
        assert_eq!(event["detail-type"], "Scheduled Event");
        let parsed: aws_lambda_events::eventbridge::EventBridgeEvent =
            serde_json::from_value(event).expect("the runtime's EventBridgeEvent");
        assert_eq!(parsed.source, "aws.events");
    }
}
