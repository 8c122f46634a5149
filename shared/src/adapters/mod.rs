//! Implementations of the ports: DynamoDB, SQS, Step Functions, search engines, payment providers.

pub mod dynamo;
