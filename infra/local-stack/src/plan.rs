//! The resolved plan: what template.yaml describes, with every intrinsic (`!Ref`, `!GetAtt`, `!Sub`) resolved
//! to the local resources that provisioning created. The template reader produces it; the Lambda runtime,
//! the HTTP gateway and the event-source pollers consume it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the running parts need.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Functions by logical id.
    pub functions: BTreeMap<String, FunctionPlan>,
    pub routes: Vec<RoutePlan>,
    pub cors: Option<CorsPlan>,
    pub sqs_sources: Vec<SqsSourcePlan>,
    pub stream_sources: Vec<StreamSourcePlan>,
    pub schedules: Vec<SchedulePlan>,
}

/// One Lambda function as it will run locally.
#[derive(Debug, Clone)]
pub struct FunctionPlan {
    /// The template's logical id, also the local function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub logical_id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`), found at `<bin_dir>/<binary>`.
    pub binary: PathBuf,
    /// The function's environment from the template, references resolved; the runtime adds the AWS_* ones.
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// `ReservedConcurrentExecutions`, if set: the most instances that may run at once.
    pub reserved_concurrency: Option<u32>,
}

/// An HTTP API route (`Events.*.Type: HttpApi`).
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// Path with `{param}` and `{proxy+}` segments, as declared.
    pub path: String,
    /// The function's logical id.
    pub function: String,
    /// The JWT authorizer that guards the route; `None` for `Authorizer: NONE`.
    pub auth: Option<JwtAuthPlan>,
    /// Route throttling from the API's `RouteSettings`/`DefaultRouteSettings`, if declared.
    pub throttle: Option<ThrottlePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThrottlePlan {
    pub rate_limit: f64,
    pub burst_limit: u32,
}

/// A JWT authorizer, resolved for local use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthPlan {
    pub name: String,
    /// `$request.header.Authorization` -> `authorization`.
    pub identity_header: String,
    /// The expected `iss` (AWS-style Cognito issuer, as moto signs it).
    pub issuer: String,
    /// Accepted `aud` (ID tokens) or `client_id` (access tokens).
    pub audiences: Vec<String>,
    /// Where the JWKS is served locally (moto's `/<pool>/.well-known/jwks.json`).
    pub jwks_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPlan {
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
    pub allow_credentials: bool,
}

/// SQS -> function event source mapping.
#[derive(Debug, Clone)]
pub struct SqsSourcePlan {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency` (2..=1000 in AWS); `None` means the poller's default.
    pub maximum_concurrency: Option<u32>,
    pub maximum_batching_window: Duration,
}

/// DynamoDB stream -> function event source mapping.
#[derive(Debug, Clone)]
pub struct StreamSourcePlan {
    pub function: String,
    pub table_name: String,
    pub stream_arn: String,
    pub batch_size: u32,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub bisect_on_error: bool,
    /// `-1` means retry until the record expires.
    pub maximum_retry_attempts: i64,
    pub report_batch_item_failures: bool,
    /// `DestinationConfig.OnFailure` as an SQS queue URL, if set.
    pub on_failure_queue_url: Option<String>,
}

/// A schedule (`Type: Schedule` or `ScheduleV2`) that invokes a function.
#[derive(Debug, Clone)]
pub struct SchedulePlan {
    pub function: String,
    /// The `rate(...)` interval; a local override may shorten it.
    pub interval: Duration,
    /// The event `Input`, if declared, else an EventBridge scheduled event.
    pub input: Option<serde_json::Value>,
}
