//! The flash-sale settings the model reads from template.yaml: the worker's SQS event (BatchSize,
//! `ScalingConfig.MaximumConcurrency`, batching window), the waiting room's visibility timeout, the entry and
//! status routes' `RouteSettings` throttles, function timeouts and memory, the entry and status functions' gate caches
//! and the lane cap (`FLASH_MAX_LANES`) when the template sets one.
//!
//! CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub` ...) arrive as tagged YAML values; a `!Ref` to a
//! template parameter resolves to the parameter's `Default`, anything else the model needs must be a literal.

use serde_yaml::Value;
use std::path::Path;

/// Where a number came from, for the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub value: f64,
    /// `template.yaml: <path>`, or the default the model assumed.
    pub source: String,
}

impl Setting {
    fn from_template(value: f64, path: &str) -> Self {
        Self { value, source: format!("template.yaml {path}") }
    }

    fn assumed(value: f64, why: &str) -> Self {
        Self { value, source: why.to_owned() }
    }
}

/// What the model takes from the template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSettings {
    pub batch_size: Setting,
    pub max_concurrency: Setting,
    pub batching_window_s: Setting,
    pub worker_timeout_s: Setting,
    pub worker_memory_mb: Setting,
    pub entry_memory_mb: Setting,
    pub poll_memory_mb: Setting,
    pub visibility_timeout_s: Setting,
    pub entry_rps: Setting,
    pub entry_burst: Setting,
    pub poll_rps: Setting,
    pub poll_burst: Setting,
    pub gate_cache_ms: Setting,
    pub poll_gate_cache_ms: Setting,
    /// Items holding a new sale's gate (`FLASH_GATE_COPIES` of the function that creates sales).
    pub gate_copies: Setting,
    /// The deployment's lane cap (`FLASH_MAX_LANES`), if the template sets it.
    pub max_lanes: Option<Setting>,
    /// `FifoThroughputLimit: perMessageGroupId` (high-throughput FIFO).
    pub high_throughput_fifo: bool,
}

/// Reads `path`.
pub fn read(path: &Path) -> Result<TemplateSettings, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text)
}

/// Reads a template's text.
pub fn parse(text: &str) -> Result<TemplateSettings, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
    let t = Template { doc: &doc };
    let globals = doc.get("Globals").and_then(|g| g.get("Function"));
    let global_memory = globals.and_then(|g| t.number(g.get("MemorySize"))).unwrap_or(128.0);
    let global_timeout = globals.and_then(|g| t.number(g.get("Timeout"))).unwrap_or(3.0);

    let (worker_id, worker) = t.function("admit-flash-sale-entries")?;
    let (entry_id, entry) = t.function("enter-flash-sale")?;
    let (poll_id, poll) = t.function("get-flash-sale-entry")?;
    let memory = |id: &str, f: &Value| match t.number(f.get("Properties").and_then(|p| p.get("MemorySize"))) {
        Some(mb) => Setting::from_template(mb, &format!("{id}.MemorySize")),
        None => Setting::from_template(global_memory, "Globals.Function.MemorySize"),
    };
    let worker_timeout = match t.number(worker.get("Properties").and_then(|p| p.get("Timeout"))) {
        Some(s) => Setting::from_template(s, &format!("{worker_id}.Timeout")),
        None => Setting::from_template(global_timeout, "Globals.Function.Timeout"),
    };

    let (event_name, sqs) = events(worker)
        .find(|(_, e)| e.get("Type").and_then(Value::as_str) == Some("SQS"))
        .ok_or_else(|| format!("{worker_id} has no SQS event"))?;
    let sqs_props = sqs.get("Properties").ok_or_else(|| format!("{worker_id}.{event_name} has no Properties"))?;
    let at = |name: &str| format!("{worker_id}.Events.{event_name}.{name}");
    let batch_size = t
        .number(sqs_props.get("BatchSize"))
        .map(|v| Setting::from_template(v, &at("BatchSize")))
        .unwrap_or_else(|| Setting::assumed(10.0, "SQS event default BatchSize (10)"));
    let max_concurrency = t
        .number(sqs_props.get("ScalingConfig").and_then(|s| s.get("MaximumConcurrency")))
        .map(|v| Setting::from_template(v, &at("ScalingConfig.MaximumConcurrency")))
        .unwrap_or_else(|| Setting::assumed(1000.0, "no MaximumConcurrency: the event source's 1,000"));
    let batching_window_s = t
        .number(sqs_props.get("MaximumBatchingWindowInSeconds"))
        .map(|v| Setting::from_template(v, &at("MaximumBatchingWindowInSeconds")))
        .unwrap_or_else(|| Setting::assumed(0.0, "no batching window (0 s)"));

    let queue_id = t.ref_target(sqs_props.get("Queue")).unwrap_or_else(|| "WaitingRoomQueue".to_owned());
    let queue = t.resource(&queue_id).and_then(|q| q.get("Properties"));
    let visibility_timeout_s = t
        .number(queue.and_then(|q| q.get("VisibilityTimeout")))
        .map(|v| Setting::from_template(v, &format!("{queue_id}.VisibilityTimeout")))
        .unwrap_or_else(|| Setting::assumed(30.0, "SQS default VisibilityTimeout (30 s)"));
    let high_throughput_fifo =
        queue.and_then(|q| q.get("FifoThroughputLimit")).and_then(Value::as_str) == Some("perMessageGroupId");

    let (entry_rps, entry_burst) = t.throttle(&entry_id, entry);
    let (poll_rps, poll_burst) = t.throttle(&poll_id, poll);
    let gate_cache_ms = t
        .number(env(entry, "FLASH_GATE_CACHE_MS"))
        .map(|v| Setting::from_template(v, &format!("{entry_id}.Environment.FLASH_GATE_CACHE_MS")))
        .unwrap_or_else(|| Setting::assumed(1000.0, "enter-flash-sale's default gate cache (1,000 ms)"));
    let poll_gate_cache_ms = t
        .number(env(poll, "FLASH_GATE_CACHE_MS"))
        .map(|v| Setting::from_template(v, &format!("{poll_id}.Environment.FLASH_GATE_CACHE_MS")))
        .unwrap_or_else(|| Setting::assumed(1000.0, "get-flash-sale-entry's default open-gate trust (1,000 ms)"));
    // A deployment-wide setting: the first function that sets the variable.
    let any_env = |name: &str| {
        t.functions().find_map(|(id, f)| {
            t.number(env(f, name)).map(|v| Setting::from_template(v, &format!("{id}.Environment.{name}")))
        })
    };
    let gate_copies =
        any_env("FLASH_GATE_COPIES").unwrap_or_else(|| Setting::assumed(1.0, "no FLASH_GATE_COPIES: the gate alone"));
    let max_lanes = any_env("FLASH_MAX_LANES");

    Ok(TemplateSettings {
        batch_size,
        max_concurrency,
        batching_window_s,
        worker_timeout_s: worker_timeout,
        worker_memory_mb: memory(&worker_id, worker),
        entry_memory_mb: memory(&entry_id, entry),
        poll_memory_mb: memory(&poll_id, poll),
        visibility_timeout_s,
        entry_rps: entry_rps.unwrap_or_else(|| Setting::assumed(f64::INFINITY, "no route throttle")),
        entry_burst: entry_burst.unwrap_or_else(|| Setting::assumed(f64::INFINITY, "no route throttle")),
        poll_rps: poll_rps.unwrap_or_else(|| Setting::assumed(f64::INFINITY, "no route throttle")),
        poll_burst: poll_burst.unwrap_or_else(|| Setting::assumed(f64::INFINITY, "no route throttle")),
        gate_cache_ms,
        poll_gate_cache_ms,
        gate_copies,
        max_lanes,
        high_throughput_fifo,
    })
}

struct Template<'a> {
    doc: &'a Value,
}

impl<'a> Template<'a> {
    fn resources(&self) -> impl Iterator<Item = (String, &'a Value)> {
        self.doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v)))
    }

    fn resource(&self, id: &str) -> Option<&'a Value> {
        self.doc.get("Resources").and_then(|r| r.get(id))
    }

    fn functions(&self) -> impl Iterator<Item = (String, &'a Value)> {
        self.resources().filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
    }

    /// The function built from cargo binary `binary` (`Metadata.BuildProperties.Binary`).
    fn function(&self, binary: &str) -> Result<(String, &'a Value), String> {
        self.functions()
            .find(|(_, f)| {
                f.get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Value::as_str)
                    == Some(binary)
            })
            .ok_or_else(|| format!("template.yaml has no function built from {binary}"))
    }

    /// A number, a numeric string, or a `!Ref` to a parameter with a numeric default.
    fn number(&self, value: Option<&Value>) -> Option<f64> {
        match value? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            Value::Tagged(tagged) if tagged.tag == "Ref" => self.parameter_default(tagged.value.as_str()?),
            Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).and_then(|p| self.parameter_default(p)),
            _ => None,
        }
    }

    fn parameter_default(&self, name: &str) -> Option<f64> {
        let default = self.doc.get("Parameters")?.get(name)?.get("Default")?;
        match default {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The logical id a `!Ref X` / `!GetAtt X.Arn` names.
    fn ref_target(&self, value: Option<&Value>) -> Option<String> {
        match value? {
            Value::Tagged(tagged) if tagged.tag == "Ref" || tagged.tag == "GetAtt" => {
                tagged.value.as_str().map(|s| s.split('.').next().unwrap_or(s).to_owned())
            }
            Value::Mapping(m) => m
                .get("Ref")
                .or_else(|| m.get("Fn::GetAtt"))
                .and_then(|v| v.as_str().or_else(|| v.get(0).and_then(Value::as_str)))
                .map(|s| s.split('.').next().unwrap_or(s).to_owned()),
            _ => None,
        }
    }

    /// The route throttle of a function's HttpApi event.
    fn throttle(&self, id: &str, function: &Value) -> (Option<Setting>, Option<Setting>) {
        for (name, event) in events(function) {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let settings = event.get("Properties").and_then(|p| p.get("RouteSettings"));
            let path = |field: &str| format!("{id}.Events.{name}.RouteSettings.{field}");
            let rate = self
                .number(settings.and_then(|s| s.get("ThrottlingRateLimit")))
                .map(|v| Setting::from_template(v, &path("ThrottlingRateLimit")));
            let burst = self
                .number(settings.and_then(|s| s.get("ThrottlingBurstLimit")))
                .map(|v| Setting::from_template(v, &path("ThrottlingBurstLimit")));
            return (rate, burst);
        }
        (None, None)
    }
}

fn events(function: &Value) -> impl Iterator<Item = (String, &Value)> {
    function
        .get("Properties")
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v)))
}

fn env<'a>(function: &'a Value, name: &str) -> Option<&'a Value> {
    function.get("Properties")?.get("Environment")?.get("Variables")?.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  FlashWorkerConcurrency:
    Type: Number
    Default: 160
Globals:
  Function:
    MemorySize: 256
    Timeout: 10
Resources:
  WaitingRoomQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      FifoThroughputLimit: perMessageGroupId
      VisibilityTimeout: 60
  EnterFlashSaleFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: enter-flash-sale
    Properties:
      Environment:
        Variables:
          WAITING_ROOM_QUEUE_URL: !Ref WaitingRoomQueue
          FLASH_GATE_CACHE_MS: "1000"
      Events:
        Api:
          Type: HttpApi
          Properties:
            Path: /v1/flash-sales/{sale_id}/entries
            RouteSettings:
              ThrottlingRateLimit: 5000
              ThrottlingBurstLimit: 2000
  GetFlashSaleEntryFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: get-flash-sale-entry
    Properties:
      MemorySize: 128
      Events:
        Api:
          Type: HttpApi
          Properties:
            RouteSettings:
              ThrottlingRateLimit: 10000
              ThrottlingBurstLimit: 5000
  CreateFlashSaleFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: create-flash-sale
    Properties:
      Environment:
        Variables:
          FLASH_MAX_LANES: !Ref FlashWorkerConcurrency
  AdmitFlashSaleEntriesFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: admit-flash-sale-entries
    Properties:
      Timeout: 10
      Events:
        WaitingRoom:
          Type: SQS
          Properties:
            Queue: !GetAtt WaitingRoomQueue.Arn
            BatchSize: 10
            ScalingConfig:
              MaximumConcurrency: !Ref FlashWorkerConcurrency
"#;

    #[test]
    fn reads_the_flash_sale_settings_through_cloudformation_tags() {
        let s = parse(TEMPLATE).unwrap();
        assert_eq!(s.batch_size.value, 10.0);
        assert_eq!(s.max_concurrency.value, 160.0, "a !Ref resolves to the parameter's default");
        assert_eq!(s.max_lanes.as_ref().map(|l| l.value), Some(160.0));
        assert_eq!(s.visibility_timeout_s.value, 60.0);
        assert_eq!((s.entry_rps.value, s.entry_burst.value), (5000.0, 2000.0));
        assert_eq!((s.poll_rps.value, s.poll_burst.value), (10000.0, 5000.0));
        assert_eq!(s.gate_cache_ms.value, 1000.0);
        assert_eq!(s.poll_gate_cache_ms.value, 1000.0);
        assert_eq!((s.worker_memory_mb.value, s.poll_memory_mb.value), (256.0, 128.0));
        assert_eq!(s.worker_timeout_s.value, 10.0);
        assert!(s.high_throughput_fifo);
        assert!(s.max_concurrency.source.contains("MaximumConcurrency"));
        assert_eq!(s.gate_copies.value, 1.0, "no FLASH_GATE_COPIES: the gate alone");
    }

    #[test]
    fn reads_the_project_template() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let s = read(&path).unwrap();
        assert!(s.batch_size.value >= 1.0 && s.max_concurrency.value >= 2.0);
        assert!(s.entry_rps.value.is_finite(), "the entry route is throttled");
        assert!((1.0..=16.0).contains(&s.gate_copies.value), "FLASH_GATE_COPIES: {:?}", s.gate_copies);
        assert!(s.gate_copies.source.contains("FLASH_GATE_COPIES"), "{:?}", s.gate_copies);
    }
}
