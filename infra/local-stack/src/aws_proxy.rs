//! The local AWS endpoint (`AWS_ENDPOINT_URL`). Every request goes to moto unchanged, bodies streamed and the
//! `Host` header kept (moto builds queue URLs from it), except:
//! - Lambda Invoke (`POST /2015-03-31/functions/{name}/invocations`), which runs the local function. moto's
//!   Step Functions interpreter reaches this through `MOTO_PORT`, so `Catch` sees a function's `errorType`
//!   as on AWS;
//! - `POST /_local/reset`, which asks the running stack to empty and re-provision the emulator.
//!
//! moto tells services apart by the request's signature (its credential scope) and path, not by host, so every
//! SDK reaches the right service here: SES v2 (`/v2/email/...`, REST JSON), SES v1 and SNS (query), and the
//! launcher's own `GET /_local/ses/sent` passes through too.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use anyhow::Result;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::lambda::{Invocation, InvokeError, Lambdas};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// A request from the endpoint to the stack's control loop.
pub enum Control {
    /// Reset the emulator, re-provision and re-seed; answer when done.
    Reset(oneshot::Sender<Result<(), String>>),
}

/// Shared state of the endpoint.
pub struct AwsProxy {
    moto: String,
    client: Client<HttpConnector, ProxyBody>,
    lambdas: RwLock<Option<Lambdas>>,
    control: mpsc::Sender<Control>,
}

impl AwsProxy {
    /// An endpoint forwarding to moto at `moto_port`; control requests go to `control`.
    pub fn new(moto_port: u16, control: mpsc::Sender<Control>) -> Arc<AwsProxy> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(AwsProxy { moto: format!("127.0.0.1:{moto_port}"), client, lambdas: RwLock::new(None), control })
    }

    /// Sets (or clears, while the stack restarts) the functions Lambda Invoke runs.
    pub fn set_lambdas(&self, lambdas: Option<Lambdas>) {
        *self.lambdas.write().unwrap_or_else(|e| e.into_inner()) = lambdas;
    }

    fn lambdas(&self) -> Option<Lambdas> {
        self.lambdas.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Serves the endpoint on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, proxy: Arc<AwsProxy>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "aws endpoint: accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let proxy = Arc::clone(&proxy);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&proxy), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "aws endpoint: connection ended");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

async fn handle(proxy: Arc<AwsProxy>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let path = req.uri().path();
    if req.method() == Method::POST {
        if let Some(function) = invoke_target(path) {
            return Ok(invoke(&proxy, function, req).await);
        }
        if path == "/_local/reset" {
            return Ok(reset(&proxy).await);
        }
    }
    Ok(forward(&proxy, req).await)
}

/// The function name of a Lambda Invoke path, decoded (a name, a partial or full ARN, possibly qualified).
fn invoke_target(path: &str) -> Option<String> {
    let name = path.strip_prefix("/2015-03-31/functions/")?.strip_suffix("/invocations")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(percent_decode_str(name).decode_utf8_lossy().into_owned())
}

async fn invoke(proxy: &AwsProxy, function: String, req: Request<Incoming>) -> Response<ProxyBody> {
    let invocation_type = req
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_string();
    let Some(lambdas) = proxy.lambdas() else {
        return aws_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceException", "the local Lambda service is starting");
    };
    if lambdas.function_arn(&function).is_none() {
        return invoke_error(&InvokeError::UnknownFunction(function));
    }
    let payload = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return aws_error(StatusCode::BAD_REQUEST, "InvalidRequestContentException", &e.to_string()),
    };
    match invocation_type.as_str() {
        "DryRun" => return empty(StatusCode::NO_CONTENT),
        "Event" => {
            tokio::spawn(async move {
                if let Err(e) = lambdas.invoke(&function, payload).await {
                    tracing::warn!(function = %function, error = %e, "asynchronous invocation failed");
                }
            });
            return empty(StatusCode::ACCEPTED);
        }
        _ => {}
    }
    match lambdas.invoke(&function, payload).await {
        Ok(Invocation::Success(body)) => invocation_response(body, false),
        Ok(Invocation::FunctionError { body, .. }) => invocation_response(body, true),
        Err(e) => invoke_error(&e),
    }
}

fn invocation_response(body: Bytes, function_error: bool) -> Response<ProxyBody> {
    let mut resp = full(StatusCode::OK, body);
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-amz-executed-version", HeaderValue::from_static("$LATEST"));
    if function_error {
        headers.insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
    }
    resp
}

fn invoke_error(e: &InvokeError) -> Response<ProxyBody> {
    let (status, code) = match e {
        InvokeError::UnknownFunction(_) => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
        InvokeError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException"),
        InvokeError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
        InvokeError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "ServiceException"),
        InvokeError::Spawn { .. } | InvokeError::Internal { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException")
        }
    };
    aws_error(status, code, &e.to_string())
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"Type": "User", "__type": code, "message": message});
    let mut resp = full(status, Bytes::from(body.to_string()));
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

async fn reset(proxy: &AwsProxy) -> Response<ProxyBody> {
    let (tx, rx) = oneshot::channel();
    if proxy.control.send(Control::Reset(tx)).await.is_err() {
        return json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": "the stack is stopping"}));
    }
    match rx.await {
        Ok(Ok(())) => json(StatusCode::OK, serde_json::json!({"reset": true})),
        Ok(Err(e)) => json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": e})),
        Err(_) => json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": "the stack is stopping"})),
    }
}

async fn forward(proxy: &AwsProxy, req: Request<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let uri: Uri = match format!("http://{}{}", proxy.moto, path).parse() {
        Ok(uri) => uri,
        Err(e) => return aws_error(StatusCode::BAD_REQUEST, "InvalidRequest", &e.to_string()),
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    let outbound = Request::from_parts(parts, body.map_err(BoxError::from).boxed());
    match proxy.client.request(outbound).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.map_err(BoxError::from).boxed())
        }
        Err(e) => {
            tracing::warn!(error = %e, "aws endpoint: moto unreachable");
            aws_error(StatusCode::BAD_GATEWAY, "ServiceUnavailable", "the AWS emulator is not reachable")
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"] {
        headers.remove(name);
    }
}

fn full(status: StatusCode, body: Bytes) -> Response<ProxyBody> {
    let mut resp = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *resp.status_mut() = status;
    resp
}

fn empty(status: StatusCode) -> Response<ProxyBody> {
    full(status, Bytes::new())
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut resp = full(status, Bytes::from(value.to_string()));
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_the_invoke_path_names_an_arn_should_decode_it() {
        assert_eq!(invoke_target("/2015-03-31/functions/GetProduct/invocations").as_deref(), Some("GetProduct"));
        assert_eq!(
            invoke_target(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3AReserveStock%3A%24LATEST/invocations"
            )
            .as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:ReserveStock:$LATEST")
        );
        assert_eq!(invoke_target("/2015-03-31/functions/GetProduct/configuration"), None);
        assert_eq!(invoke_target("/2015-03-31/functions//invocations"), None);
    }
}
