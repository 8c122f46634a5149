//! Partial batch failures, the one shape every SQS and stream consumer answers with: the messages (or the
//! first stream record) to retry; everything else in the batch counts as done.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

/// An SQS batch's answer: the ids of the messages to deliver again (the queue's redrive policy then sends a
/// message that keeps failing to its dead-letter queue).
pub fn sqs_failures(message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = message_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// A DynamoDB stream batch's answer: the sequence number of the first record to retry, if any (the event
/// source retries from it, bisects, and finally sends it to the on-failure destination).
pub fn stream_failure(first_failed: Option<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence_number) = first_failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_exactly_the_items_to_retry() {
        assert!(sqs_failures(Vec::new()).batch_item_failures.is_empty());
        let ids: Vec<String> = sqs_failures(["a".to_owned(), "b".to_owned()])
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(stream_failure(None).batch_item_failures.is_empty());
        let first = stream_failure(Some("42".into())).batch_item_failures;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].item_identifier.as_deref(), Some("42"));
    }
}
