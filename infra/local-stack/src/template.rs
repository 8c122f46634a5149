//! The template reader: loads template.yaml (SAM), applies Globals and Conditions, classifies every resource,
//! orders the ones that must be created, and resolves CloudFormation intrinsics (`!Ref`, `!GetAtt`, `!Sub`,
//! `!Join`, `!Select`, `!Split`, `!If`, `!FindInMap` ...) against the attributes of what provisioning created.
//!
//! Short-form tags are rewritten to their long form (`!Ref X` -> `{"Ref": "X"}`) while the YAML is turned into
//! JSON, so the rest of the reader sees one shape. Anything the local stack cannot run or resolve is an error
//! that names the construct and the logical id: a template that works locally only in part must not start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{Map, Value};

/// The local stack's name: physical names are `<STACK_NAME>-<LogicalId>`.
pub const STACK_NAME: &str = "commerce-local";
/// The region of every local resource.
pub const REGION: &str = "us-east-1";
/// The account of every local ARN.
pub const ACCOUNT_ID: &str = "123456789012";

/// How the local stack treats a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    Queue,
    UserPool,
    UserPoolClient,
    UserPoolGroup,
    StateMachine,
    /// Secrets Manager secret: created in the emulator with the template's or a generated value.
    Secret,
    Function,
    HttpApi,
    /// OpenSearch domain or serverless collection: an embedded index under the state dir.
    Search,
    /// SES email identity (a domain or an address): created in the emulator, which then accepts mail from it.
    EmailIdentity,
    /// SES configuration set: created in the emulator.
    ConfigurationSet,
    /// SES configuration set event destination: SNS destinations are emulated through the identities'
    /// notification topics (`provision::create_event_destination`).
    EventDestination,
    /// SNS topic: created in the emulator.
    Topic,
    /// SNS subscription: `sqs` subscriptions are created in the emulator; other protocols (email, https, ...)
    /// have no local receiver and are not.
    Subscription,
    /// IAM, logging, alarms, dashboards, the CDN and other deploy-only resources: accepted, not created.
    Ignored,
}

impl Kind {
    /// The kind of a CloudFormation/SAM resource type, `None` if the local stack cannot run it.
    pub fn of(resource_type: &str) -> Option<Kind> {
        let kind = match resource_type {
            "AWS::DynamoDB::Table" => Kind::Table,
            "AWS::SQS::Queue" => Kind::Queue,
            "AWS::Cognito::UserPool" => Kind::UserPool,
            "AWS::Cognito::UserPoolClient" => Kind::UserPoolClient,
            "AWS::Cognito::UserPoolGroup" => Kind::UserPoolGroup,
            "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => Kind::StateMachine,
            "AWS::SecretsManager::Secret" => Kind::Secret,
            "AWS::Serverless::Function" => Kind::Function,
            "AWS::Serverless::HttpApi" => Kind::HttpApi,
            "AWS::OpenSearchService::Domain" | "AWS::OpenSearchServerless::Collection" => Kind::Search,
            "AWS::SES::EmailIdentity" => Kind::EmailIdentity,
            "AWS::SES::ConfigurationSet" => Kind::ConfigurationSet,
            "AWS::SES::ConfigurationSetEventDestination" => Kind::EventDestination,
            "AWS::SNS::Topic" => Kind::Topic,
            "AWS::SNS::Subscription" => Kind::Subscription,
            t if IGNORED_PREFIXES.iter().any(|p| t.starts_with(p)) || IGNORED_TYPES.contains(&t) => Kind::Ignored,
            _ => return None,
        };
        Some(kind)
    }

    /// True for the kinds whose attributes exist only once they have been created in the emulator.
    pub fn is_provisioned(self) -> bool {
        matches!(
            self,
            Kind::Table
                | Kind::Queue
                | Kind::UserPool
                | Kind::UserPoolClient
                | Kind::UserPoolGroup
                | Kind::StateMachine
                | Kind::Secret
                | Kind::EmailIdentity
                | Kind::ConfigurationSet
                | Kind::EventDestination
                | Kind::Topic
                | Kind::Subscription
        )
    }
}

const IGNORED_PREFIXES: &[&str] = &["AWS::IAM::", "AWS::Logs::", "AWS::CloudWatch::", "AWS::CloudFront::"];
const IGNORED_TYPES: &[&str] = &[
    "AWS::Lambda::Permission",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::TopicInlinePolicy",
    "AWS::Cognito::UserPoolDomain",
    "AWS::OpenSearchServerless::SecurityPolicy",
    "AWS::OpenSearchServerless::AccessPolicy",
    "AWS::Serverless::Connector",
];

/// One resource of the template, Globals merged, Properties still unresolved.
#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub resource_type: String,
    pub kind: Kind,
    pub properties: Value,
    pub metadata: Value,
    depends_on: Vec<String>,
}

impl Resource {
    /// A property, unresolved; `None` if absent.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    /// The physical name the local stack gives a table, queue or state machine.
    pub fn physical_name(&self) -> String {
        format!("{STACK_NAME}-{}", self.logical_id)
    }
}

/// The values of the pseudo parameters and the places the local stack uses.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Where `embedded:` search indexes live: `<state-dir>/search`.
    pub search_dir: PathBuf,
    /// Base URL of the local HTTP API (`http://127.0.0.1:<api-port>`).
    pub api_url: String,
}

/// A loaded template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The folder the template lives in: `DefinitionUri` and `CodeUri` are relative to it.
    pub dir: PathBuf,
    /// Active resources (conditions applied) by logical id.
    pub resources: BTreeMap<String, Resource>,
    /// `Globals.HttpApi`, merged into HttpApi resources and used for the implicit API.
    pub http_api_globals: Value,
    /// The resolver with parameters, mappings, conditions and the attributes known without provisioning.
    pub resolver: Resolver,
}

impl Template {
    /// Reads and checks `path`. `overrides` replace parameter defaults.
    pub fn load(path: &Path, overrides: &BTreeMap<String, String>, env: &Environment) -> Result<Template> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading template {}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Template::parse(&text, dir, overrides, env).with_context(|| format!("in template {}", path.display()))
    }

    /// Parses template text; `dir` is where relative file references point.
    pub fn parse(
        text: &str,
        dir: PathBuf,
        overrides: &BTreeMap<String, String>,
        env: &Environment,
    ) -> Result<Template> {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).context("template.yaml is not valid YAML")?;
        let doc = yaml_to_json(&yaml)?;
        let params = parameters(&doc, overrides)?;
        let mut resolver = Resolver {
            params,
            mappings: doc.get("Mappings").cloned().unwrap_or(Value::Null),
            conditions: BTreeMap::new(),
            attrs: BTreeMap::new(),
        };
        if let Some(Value::Object(conds)) = doc.get("Conditions") {
            resolver.evaluate_conditions(conds)?;
        }

        let globals = doc.get("Globals").cloned().unwrap_or(Value::Null);
        let function_globals = globals.get("Function").cloned().unwrap_or(Value::Null);
        let http_api_globals = globals.get("HttpApi").cloned().unwrap_or(Value::Null);
        let state_machine_globals = globals.get("StateMachine").cloned().unwrap_or(Value::Null);

        let Some(Value::Object(raw)) = doc.get("Resources") else {
            bail!("the template has no Resources section");
        };
        let mut resources = BTreeMap::new();
        for (id, body) in raw {
            let resource_type =
                body.get("Type").and_then(Value::as_str).ok_or_else(|| anyhow!("resource {id} has no Type"))?;
            if let Some(cond) = body.get("Condition") {
                let name = cond.as_str().ok_or_else(|| anyhow!("resource {id}: Condition must be a name"))?;
                if !resolver.condition(name, id)? {
                    continue;
                }
            }
            let kind =
                Kind::of(resource_type).ok_or_else(|| anyhow!("unsupported: {resource_type} in resource {id}"))?;
            let own = body.get("Properties").cloned().unwrap_or_else(|| Value::Object(Map::new()));
            let properties = match kind {
                Kind::Function => merge_globals(&function_globals, own),
                Kind::HttpApi => merge_globals(&http_api_globals, own),
                Kind::StateMachine if resource_type == "AWS::Serverless::StateMachine" => {
                    merge_globals(&state_machine_globals, own)
                }
                _ => own,
            };
            let depends_on = match body.get("DependsOn") {
                None => Vec::new(),
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                Some(_) => bail!("resource {id}: DependsOn must be a name or a list of names"),
            };
            resources.insert(
                id.clone(),
                Resource {
                    logical_id: id.clone(),
                    resource_type: resource_type.to_string(),
                    kind,
                    properties,
                    metadata: body.get("Metadata").cloned().unwrap_or(Value::Null),
                    depends_on,
                },
            );
        }

        for r in resources.values() {
            resolver.attrs.insert(r.logical_id.clone(), static_attributes(r, env));
        }
        Ok(Template { dir, resources, http_api_globals, resolver })
    }

    /// The resources to create in the emulator, each after the ones it refers to.
    pub fn provisioning_order(&self) -> Result<Vec<&Resource>> {
        let provisioned: BTreeSet<&str> =
            self.resources.values().filter(|r| r.kind.is_provisioned()).map(|r| r.logical_id.as_str()).collect();
        let mut deps: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for id in &provisioned {
            let r = &self.resources[*id];
            let mut names = BTreeSet::new();
            collect_references(&r.properties, &mut names);
            names.extend(r.depends_on.iter().cloned());
            if r.kind == Kind::EventDestination {
                // It wires the identities that use its configuration set, which nothing in its properties names.
                names.extend(self.of_kind(Kind::EmailIdentity).map(|i| i.logical_id.clone()));
            }
            names.retain(|n| provisioned.contains(n.as_str()) && n != id);
            deps.insert(id, names);
        }
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut order = Vec::new();
        while order.len() < provisioned.len() {
            let ready: Vec<&str> = deps
                .iter()
                .filter(|(id, d)| !done.contains(**id) && d.iter().all(|n| done.contains(n)))
                .map(|(id, _)| *id)
                .collect();
            if ready.is_empty() {
                let stuck: Vec<&str> = deps.keys().filter(|id| !done.contains(**id)).copied().collect();
                bail!("unsupported: circular references between resources {}", stuck.join(", "));
            }
            for id in ready {
                done.insert(id.to_string());
                order.push(&self.resources[id]);
            }
        }
        Ok(order)
    }

    /// Resources of one kind, in logical-id order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources.values().filter(move |r| r.kind == kind)
    }
}

/// Resolves intrinsics. Holds parameters, mappings, evaluated conditions and resource attributes.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    params: BTreeMap<String, Value>,
    mappings: Value,
    conditions: BTreeMap<String, bool>,
    /// Attributes by logical id; `"Ref"` is what `!Ref` gives.
    attrs: BTreeMap<String, BTreeMap<String, Value>>,
}

/// The value `!Ref AWS::NoValue` removes its property or list item.
const NO_VALUE: &str = "AWS::NoValue";

impl Resolver {
    /// Records what a created resource's `!Ref` and `!GetAtt` give.
    pub fn set_attributes(&mut self, logical_id: &str, attributes: BTreeMap<String, Value>) {
        self.attrs.entry(logical_id.to_string()).or_default().extend(attributes);
    }

    /// An attribute recorded for a resource.
    pub fn attribute(&self, logical_id: &str, name: &str) -> Option<&Value> {
        self.attrs.get(logical_id).and_then(|a| a.get(name))
    }

    /// Resolves every intrinsic in `value`; `at` names the resource for error messages. `AWS::NoValue` as the
    /// whole value gives `Value::Null`.
    pub fn resolve(&self, value: &Value, at: &str) -> Result<Value> {
        Ok(self.eval(value, at)?.unwrap_or(Value::Null))
    }

    /// Resolves `value` and renders it as a string (numbers and booleans as CloudFormation does).
    pub fn resolve_string(&self, value: &Value, at: &str) -> Result<String> {
        let v = self.resolve(value, at)?;
        scalar_string(&v).ok_or_else(|| anyhow!("resource {at}: expected a string, got {v}"))
    }

    fn eval(&self, value: &Value, at: &str) -> Result<Option<Value>> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                if key == "Ref" || key.starts_with("Fn::") || key == "Condition" {
                    return self.intrinsic(key, arg, at);
                }
                self.eval_object(map, at)
            }
            Value::Object(map) => self.eval_object(map, at),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = self.eval(item, at)? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn eval_object(&self, map: &Map<String, Value>, at: &str) -> Result<Option<Value>> {
        let mut out = Map::new();
        for (k, v) in map {
            if let Some(v) = self.eval(v, at)? {
                out.insert(k.clone(), v);
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn intrinsic(&self, name: &str, arg: &Value, at: &str) -> Result<Option<Value>> {
        let short = name.trim_start_matches("Fn::");
        let bad = || anyhow!("unsupported: malformed !{short} in resource {at}");
        match name {
            "Ref" => {
                let target = arg.as_str().ok_or_else(bad)?;
                if target == NO_VALUE {
                    return Ok(None);
                }
                self.reference(target, at).map(Some)
            }
            "Condition" => {
                let cond = arg.as_str().ok_or_else(bad)?;
                Ok(Some(Value::Bool(self.condition(cond, at)?)))
            }
            "Fn::GetAtt" => {
                let (res, attr) = match arg {
                    Value::String(s) => s.split_once('.').map(|(a, b)| (a.to_string(), b.to_string())),
                    Value::Array(parts) if parts.len() == 2 => {
                        let res = parts[0].as_str().ok_or_else(bad)?.to_string();
                        let attr = self.resolve_string(&parts[1], at)?;
                        Some((res, attr))
                    }
                    _ => None,
                }
                .ok_or_else(bad)?;
                self.get_att(&res, &attr, at).map(Some)
            }
            "Fn::Sub" => {
                let (template, vars) = match arg {
                    Value::String(s) => (s.as_str(), Map::new()),
                    Value::Array(parts) if parts.len() == 2 => {
                        let s = parts[0].as_str().ok_or_else(bad)?;
                        let Some(Value::Object(vars)) = self.eval(&parts[1], at)? else {
                            return Err(bad());
                        };
                        (s, vars)
                    }
                    _ => return Err(bad()),
                };
                self.sub(template, &vars, at).map(|s| Some(Value::String(s)))
            }
            "Fn::Join" => {
                let parts = arg.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                let delim = parts[0].as_str().ok_or_else(bad)?;
                let list = self.resolve(&parts[1], at)?;
                let items = list.as_array().ok_or_else(bad)?;
                let strings: Option<Vec<String>> = items.iter().map(scalar_string).collect();
                Ok(Some(Value::String(strings.ok_or_else(bad)?.join(delim))))
            }
            "Fn::Select" => {
                let parts = arg.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                let index: usize = self.resolve_string(&parts[0], at)?.parse().map_err(|_| bad())?;
                let list = self.resolve(&parts[1], at)?;
                let item = list.as_array().and_then(|l| l.get(index)).ok_or_else(bad)?;
                Ok(Some(item.clone()))
            }
            "Fn::Split" => {
                let parts = arg.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                let delim = parts[0].as_str().ok_or_else(bad)?;
                let s = self.resolve_string(&parts[1], at)?;
                Ok(Some(Value::Array(s.split(delim).map(|p| Value::String(p.to_string())).collect())))
            }
            "Fn::If" => {
                let parts = arg.as_array().filter(|p| p.len() == 3).ok_or_else(bad)?;
                let cond = parts[0].as_str().ok_or_else(bad)?;
                let branch = if self.condition(cond, at)? { &parts[1] } else { &parts[2] };
                self.eval(branch, at)
            }
            "Fn::Equals" => {
                let parts = arg.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                let a = self.resolve(&parts[0], at)?;
                let b = self.resolve(&parts[1], at)?;
                let eq = match (scalar_string(&a), scalar_string(&b)) {
                    (Some(a), Some(b)) => a == b,
                    _ => a == b,
                };
                Ok(Some(Value::Bool(eq)))
            }
            "Fn::Not" => {
                let parts = arg.as_array().filter(|p| p.len() == 1).ok_or_else(bad)?;
                Ok(Some(Value::Bool(!self.truth(&parts[0], at)?)))
            }
            "Fn::And" | "Fn::Or" => {
                let parts = arg.as_array().filter(|p| !p.is_empty()).ok_or_else(bad)?;
                let mut values = Vec::with_capacity(parts.len());
                for p in parts {
                    values.push(self.truth(p, at)?);
                }
                let result = if name == "Fn::And" { values.iter().all(|v| *v) } else { values.iter().any(|v| *v) };
                Ok(Some(Value::Bool(result)))
            }
            "Fn::FindInMap" => {
                let parts = arg.as_array().filter(|p| p.len() == 3).ok_or_else(bad)?;
                let map = self.resolve_string(&parts[0], at)?;
                let top = self.resolve_string(&parts[1], at)?;
                let second = self.resolve_string(&parts[2], at)?;
                let v = self
                    .mappings
                    .get(&map)
                    .and_then(|m| m.get(&top))
                    .and_then(|m| m.get(&second))
                    .ok_or_else(|| anyhow!("unresolved: !FindInMap [{map}, {top}, {second}] in resource {at}"))?;
                Ok(Some(v.clone()))
            }
            "Fn::Base64" => {
                use base64::Engine as _;
                let s = self.resolve_string(arg, at)?;
                Ok(Some(Value::String(base64::engine::general_purpose::STANDARD.encode(s))))
            }
            "Fn::GetAZs" => {
                let azs = ["a", "b", "c"].map(|z| Value::String(format!("{REGION}{z}")));
                Ok(Some(Value::Array(azs.to_vec())))
            }
            "Fn::ToJsonString" => {
                let v = self.resolve(arg, at)?;
                Ok(Some(Value::String(v.to_string())))
            }
            "Fn::Length" => {
                let v = self.resolve(arg, at)?;
                Ok(Some(Value::from(v.as_array().ok_or_else(bad)?.len())))
            }
            other => bail!("unsupported: intrinsic {other} in resource {at}"),
        }
    }

    fn truth(&self, v: &Value, at: &str) -> Result<bool> {
        match self.resolve(v, at)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => bail!("resource {at}: a condition gave {other}, not true or false"),
        }
    }

    fn reference(&self, target: &str, at: &str) -> Result<Value> {
        if let Some(v) = pseudo_parameter(target) {
            return Ok(v);
        }
        if let Some(v) = self.params.get(target) {
            return Ok(v.clone());
        }
        self.attribute(target, "Ref").cloned().ok_or_else(|| anyhow!("unresolved: !Ref {target} in resource {at}"))
    }

    fn get_att(&self, res: &str, attr: &str, at: &str) -> Result<Value> {
        if !self.attrs.contains_key(res) {
            bail!("unresolved: !GetAtt {res}.{attr} in resource {at} ({res} is not a resource of the template)");
        }
        self.attribute(res, attr).cloned().ok_or_else(|| anyhow!("unsupported: !GetAtt {res}.{attr} in resource {at}"))
    }

    fn sub(&self, template: &str, vars: &Map<String, Value>, at: &str) -> Result<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end =
                after.find('}').ok_or_else(|| anyhow!("unsupported: unterminated ${{ in !Sub in resource {at}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let v = if let Some(v) = vars.get(name) {
                    v.clone()
                } else if let Some((res, attr)) = name.split_once('.').filter(|_| pseudo_parameter(name).is_none()) {
                    self.get_att(res, attr, at)?
                } else {
                    self.reference(name, at)?
                };
                let s = scalar_string(&v)
                    .ok_or_else(|| anyhow!("resource {at}: ${{{name}}} in !Sub is not a string: {v}"))?;
                out.push_str(&s);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of a named condition of the template.
    pub fn condition(&self, name: &str, at: &str) -> Result<bool> {
        self.conditions.get(name).copied().ok_or_else(|| anyhow!("unresolved: condition {name} in resource {at}"))
    }

    fn evaluate_conditions(&mut self, conds: &Map<String, Value>) -> Result<()> {
        let mut pending: Vec<(&String, &Value)> = conds.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut still = Vec::new();
            for (name, expr) in pending {
                let mut refs = BTreeSet::new();
                collect_condition_names(expr, &mut refs);
                if refs.iter().all(|r| self.conditions.contains_key(r)) {
                    let v = self.truth(expr, &format!("Conditions.{name}"))?;
                    self.conditions.insert(name.clone(), v);
                } else {
                    still.push((name, expr));
                }
            }
            if still.len() == before {
                let names: Vec<&str> = still.iter().map(|(n, _)| n.as_str()).collect();
                bail!("unresolved: conditions {} refer to unknown or circular conditions", names.join(", "));
            }
            pending = still;
        }
        Ok(())
    }
}

fn pseudo_parameter(name: &str) -> Option<Value> {
    let v = match name {
        "AWS::Region" => REGION.to_string(),
        "AWS::AccountId" => ACCOUNT_ID.to_string(),
        "AWS::StackName" => STACK_NAME.to_string(),
        "AWS::StackId" => {
            format!(
                "arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/00000000-0000-0000-0000-000000000000"
            )
        }
        "AWS::Partition" => "aws".to_string(),
        "AWS::URLSuffix" => "amazonaws.com".to_string(),
        "AWS::NotificationARNs" => return Some(Value::Array(Vec::new())),
        _ => return None,
    };
    Some(Value::String(v))
}

/// A string, number or boolean as CloudFormation renders it in a string context.
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The attributes a resource has without being created: functions, APIs, search and deploy-only resources.
fn static_attributes(r: &Resource, env: &Environment) -> BTreeMap<String, Value> {
    let id = &r.logical_id;
    let s = |v: String| Value::String(v);
    let mut a = BTreeMap::new();
    match r.kind {
        Kind::Function => {
            a.insert("Ref".into(), s(id.clone()));
            a.insert("Arn".into(), s(function_arn(id)));
        }
        Kind::HttpApi => {
            a.insert("Ref".into(), s(id.clone()));
            a.insert("ApiId".into(), s(id.clone()));
            a.insert("ApiEndpoint".into(), s(env.api_url.clone()));
        }
        Kind::Search => {
            let endpoint = format!("embedded:{}", env.search_dir.display());
            for attr in ["Ref", "Arn", "DomainEndpoint", "CollectionEndpoint", "Id", "DomainArn", "DashboardEndpoint"] {
                a.insert(attr.into(), s(endpoint.clone()));
            }
        }
        Kind::Ignored => {
            let name = r.physical_name();
            let service = r.resource_type.split("::").nth(1).unwrap_or("local").to_lowercase();
            a.insert("Ref".into(), s(name.clone()));
            a.insert("Arn".into(), s(format!("arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{name}")));
        }
        _ => {}
    }
    a
}

/// The ARN of a local function: the logical id is the function's name.
pub fn function_arn(logical_id: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{logical_id}")
}

fn parameters(doc: &Value, overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let declared = doc.get("Parameters").and_then(Value::as_object);
    for name in overrides.keys() {
        if !declared.is_some_and(|d| d.contains_key(name)) {
            bail!("parameter override {name}: the template declares no such parameter");
        }
    }
    for (name, spec) in declared.into_iter().flatten() {
        let raw = match overrides.get(name) {
            Some(v) => Value::String(v.clone()),
            None => spec
                .get("Default")
                .cloned()
                .ok_or_else(|| anyhow!("parameter {name} has no Default; pass --param {name}=<value>"))?,
        };
        let ty = spec.get("Type").and_then(Value::as_str).unwrap_or("String");
        let value = if ty == "CommaDelimitedList" || ty.starts_with("List<") {
            match raw {
                Value::Array(items) => Value::Array(items),
                other => {
                    let s = scalar_string(&other).unwrap_or_default();
                    Value::Array(s.split(',').map(|p| Value::String(p.trim().to_string())).collect())
                }
            }
        } else {
            Value::String(scalar_string(&raw).ok_or_else(|| anyhow!("parameter {name}: Default must be a scalar"))?)
        };
        if let (Some(allowed), Some(v)) = (spec.get("AllowedValues").and_then(Value::as_array), value.as_str()) {
            if !allowed.iter().filter_map(scalar_string).any(|a| a == v) {
                bail!("parameter {name}: {v} is not one of its AllowedValues");
            }
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// SAM's Globals rule: maps merge key by key (the resource wins), anything else is the resource's.
fn merge_globals(globals: &Value, own: Value) -> Value {
    match (globals, own) {
        (Value::Object(g), Value::Object(mut o)) => {
            for (k, gv) in g {
                let merged = match o.remove(k) {
                    Some(ov) => merge_globals(gv, ov),
                    None => gv.clone(),
                };
                o.insert(k.clone(), merged);
            }
            Value::Object(o)
        }
        (_, own) => own,
    }
}

/// The logical ids a value refers to through Ref, GetAtt or Sub.
fn collect_references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, arg) in map {
                match (k.as_str(), arg) {
                    ("Ref", Value::String(s)) => {
                        out.insert(s.clone());
                    }
                    ("Fn::GetAtt", Value::String(s)) => {
                        out.insert(s.split('.').next().unwrap_or(s).to_string());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        if let Some(Value::String(s)) = parts.first() {
                            out.insert(s.clone());
                        }
                    }
                    ("Fn::Sub", Value::String(s)) => sub_names(s, out),
                    ("Fn::Sub", Value::Array(parts)) => {
                        if let Some(Value::String(s)) = parts.first() {
                            sub_names(s, out);
                        }
                        for p in parts.iter().skip(1) {
                            collect_references(p, out);
                        }
                    }
                    _ => collect_references(arg, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

fn sub_names(s: &str, out: &mut BTreeSet<String>) {
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { return };
        let name = &after[..end];
        if !name.starts_with('!') {
            out.insert(name.split('.').next().unwrap_or(name).to_string());
        }
        rest = &after[end + 1..];
    }
}

fn collect_condition_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, arg) in map {
                if k == "Condition" {
                    if let Value::String(s) = arg {
                        out.insert(s.clone());
                    }
                } else {
                    collect_condition_names(arg, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_condition_names(i, out)),
        _ => {}
    }
}

/// YAML -> JSON, short-form tags rewritten to their long form.
fn yaml_to_json(v: &serde_yaml::Value) -> Result<Value> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect::<Result<_>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => bail!("unsupported: mapping key {other:?}"),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = yaml_to_json(&tagged.value)?;
            let (key, arg) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                "GetAtt" => {
                    let arg = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((res, attr)) => Value::Array(vec![Value::from(res), Value::from(attr)]),
                            None => bail!("unsupported: !GetAtt {s} (expected Resource.Attribute)"),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), arg)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut map = Map::new();
            map.insert(key, arg);
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Environment {
        Environment { search_dir: PathBuf::from("/tmp/state/search"), api_url: "http://127.0.0.1:3000".into() }
    }

    fn parse(yaml: &str) -> Result<Template> {
        Template::parse(yaml, PathBuf::from("."), &BTreeMap::new(), &env())
    }

    fn resolve(t: &Template, id: &str, prop: &str) -> Result<Value> {
        t.resolver.resolve(t.resources[id].property(prop).expect("property"), id)
    }

    const BASE: &str = r#"
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Zones:
    Type: CommaDelimitedList
    Default: "a, b,c"
Mappings:
  Sizes:
    dev: {Memory: 128}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Globals:
  Function:
    Timeout: 10
    MemorySize: 256
    Environment:
      Variables:
        SHARED: one
        OVERRIDDEN: global
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-${Stage}-t"
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
  Dlq:
    Type: AWS::SQS::Queue
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
  Role:
    Type: AWS::IAM::Role
  Search:
    Type: AWS::OpenSearchServerless::Collection
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 3
      Environment:
        Variables:
          OVERRIDDEN: own
          TABLE: !Ref Table
          JOINED: !Join ["-", [!Select [1, !Ref Zones], !FindInMap [Sizes, !Ref Stage, Memory]]]
          MAYBE: !If [IsProd, yes, !Ref AWS::NoValue]
          SEARCH: !GetAtt Search.CollectionEndpoint
          LITERAL: !Sub "${!NotAVar}-${Fn.Arn}"
          SPLIT: !Select [2, !Split [",", "x,y,z"]]
"#;

    #[test]
    fn when_short_form_intrinsics_are_used_should_resolve_them() {
        let mut t = parse(BASE).expect("parse");
        t.resolver.set_attributes("Table", BTreeMap::from([("Ref".to_string(), json!("commerce-local-Table"))]));
        let vars = resolve(&t, "Fn", "Environment").expect("resolve");
        let vars = &vars["Variables"];
        assert_eq!(vars["TABLE"], "commerce-local-Table");
        assert_eq!(vars["JOINED"], "b-128");
        assert!(vars.get("MAYBE").is_none(), "AWS::NoValue removes the key: {vars}");
        assert_eq!(vars["SEARCH"], "embedded:/tmp/state/search");
        assert_eq!(vars["LITERAL"], "${NotAVar}-arn:aws:lambda:us-east-1:123456789012:function:Fn");
        assert_eq!(vars["SPLIT"], "z");
        assert_eq!(resolve(&t, "Table", "TableName").expect("sub"), json!("commerce-local-dev-t"));
    }

    #[test]
    fn when_globals_apply_should_merge_maps_and_keep_own_scalars() {
        let t = parse(BASE).expect("parse");
        let f = &t.resources["Fn"];
        assert_eq!(f.properties["Timeout"], 3);
        assert_eq!(f.properties["MemorySize"], 256);
        let vars = &f.properties["Environment"]["Variables"];
        assert_eq!(vars["SHARED"], "one");
        assert_eq!(vars["OVERRIDDEN"], "own");
    }

    #[test]
    fn when_a_condition_is_false_should_drop_the_resource() {
        let t = parse(BASE).expect("parse");
        assert!(!t.resources.contains_key("ProdOnly"));
        assert!(t.resolver.condition("NotProd", "x").expect("evaluated"));
        let prod = Template::parse(
            BASE,
            PathBuf::from("."),
            &BTreeMap::from([("Stage".to_string(), "prod".to_string())]),
            &env(),
        )
        .expect("parse");
        assert!(prod.resources.contains_key("ProdOnly"));
    }

    #[test]
    fn when_an_override_is_not_allowed_should_fail() {
        let err = Template::parse(
            BASE,
            PathBuf::from("."),
            &BTreeMap::from([("Stage".to_string(), "qa".to_string())]),
            &env(),
        )
        .expect_err("qa is not allowed");
        assert!(err.to_string().contains("AllowedValues"), "{err}");
    }

    #[test]
    fn when_queues_refer_to_each_other_should_order_dead_letter_queues_first() {
        let t = parse(BASE).expect("parse");
        let order: Vec<&str> = t.provisioning_order().expect("order").iter().map(|r| r.logical_id.as_str()).collect();
        let pos = |id: &str| order.iter().position(|o| *o == id).expect(id);
        assert!(pos("Dlq") < pos("Queue"), "{order:?}");
        assert!(!order.contains(&"Fn") && !order.contains(&"Role"), "{order:?}");
    }

    #[test]
    fn when_a_resource_type_is_unknown_should_fail_naming_it() {
        let err = parse("Resources:\n  Bus:\n    Type: AWS::Events::EventBus\n").expect_err("unsupported");
        assert_eq!(err.to_string(), "unsupported: AWS::Events::EventBus in resource Bus");
    }

    #[test]
    fn when_an_intrinsic_is_unknown_should_fail_naming_it_and_the_resource() {
        let t = parse("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !ImportValue other-stack-queue\n")
            .expect("parse");
        let err = resolve(&t, "Q", "QueueName").expect_err("unsupported");
        assert_eq!(err.to_string(), "unsupported: intrinsic Fn::ImportValue in resource Q");
    }

    #[test]
    fn when_a_reference_is_unknown_should_fail_naming_it() {
        let t =
            parse("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub ${Nope}-q\n")
                .expect("parse");
        let err = resolve(&t, "Q", "QueueName").expect_err("unresolved");
        assert_eq!(err.to_string(), "unresolved: !Ref Nope in resource Q");
        let t = parse("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !GetAtt Fn2.Arn\n  Fn2:\n    Type: AWS::Serverless::Function\n")
            .expect("parse");
        assert_eq!(
            resolve(&t, "Q", "QueueName").expect("function arn"),
            json!("arn:aws:lambda:us-east-1:123456789012:function:Fn2")
        );
    }

    #[test]
    fn when_an_attribute_is_not_known_should_fail_naming_it() {
        let t = parse("Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !GetAtt T.StreamArn\n")
            .expect("parse");
        let err = resolve(&t, "Q", "QueueName").expect_err("not provisioned");
        assert_eq!(err.to_string(), "unsupported: !GetAtt T.StreamArn in resource Q");
    }

    #[test]
    fn when_resources_form_a_cycle_should_fail() {
        let yaml = "Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      X: !Ref B\n  B:\n    Type: AWS::SQS::Queue\n    Properties:\n      X: !GetAtt A.Arn\n";
        let err = parse(yaml).expect("parse").provisioning_order().expect_err("cycle");
        assert!(err.to_string().contains("circular"), "{err}");
    }

    #[test]
    fn when_the_real_template_is_read_should_classify_every_resource() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path, &BTreeMap::new(), &env()).expect("template.yaml loads");
        assert!(t.resources.contains_key("CatalogTable"));
        assert!(t.provisioning_order().is_ok());
        for id in ["CheckoutSuccessRateAlarm", "Dashboard", "MailFeedbackQueuePolicy"] {
            assert_eq!(t.resources[id].kind, Kind::Ignored, "{id} is deploy-only");
        }
        for (id, kind) in [
            ("AlarmTopic", Kind::Topic),
            ("MailFeedbackTopic", Kind::Topic),
            ("MailFeedbackSubscription", Kind::Subscription),
            ("MailIdentity", Kind::EmailIdentity),
            ("MailConfigurationSet", Kind::ConfigurationSet),
            ("MailFeedbackDestination", Kind::EventDestination),
        ] {
            assert_eq!(t.resources[id].kind, kind, "{id}");
        }
        assert!(!t.resources.contains_key("AlarmEmailSubscription"), "no AlarmEmail, no subscription");
        let with_email =
            Template::load(&path, &BTreeMap::from([("AlarmEmail".to_string(), "ops@example.com".to_string())]), &env())
                .expect("template.yaml loads with an alarm email");
        assert_eq!(with_email.resources["AlarmEmailSubscription"].kind, Kind::Subscription);
        assert!(with_email.provisioning_order().is_ok());
    }

    const MAIL: &str = r#"
Resources:
  Destination:
    Type: AWS::SES::ConfigurationSetEventDestination
    Properties:
      ConfigurationSetName: !Ref Set
      EventDestination:
        Enabled: true
        MatchingEventTypes: [bounce]
        SnsDestination: {TopicARN: !Ref Topic}
  Identity:
    Type: AWS::SES::EmailIdentity
    Properties:
      EmailIdentity: shop.example.com
      ConfigurationSetAttributes: {ConfigurationSetName: !Ref Set}
  Set:
    Type: AWS::SES::ConfigurationSet
  Topic:
    Type: AWS::SNS::Topic
  Subscription:
    Type: AWS::SNS::Subscription
    Properties: {TopicArn: !Ref Topic, Protocol: sqs, Endpoint: !GetAtt Queue.Arn}
  Queue:
    Type: AWS::SQS::Queue
  Policy:
    Type: AWS::SNS::TopicPolicy
"#;

    #[test]
    fn when_mail_resources_are_ordered_should_wire_event_destinations_after_the_identities() {
        let t = parse(MAIL).expect("parse");
        let order: Vec<&str> = t.provisioning_order().expect("order").iter().map(|r| r.logical_id.as_str()).collect();
        let pos = |id: &str| order.iter().position(|o| *o == id).expect(id);
        assert!(pos("Set") < pos("Identity"), "{order:?}");
        assert!(pos("Identity") < pos("Destination") && pos("Topic") < pos("Destination"), "{order:?}");
        assert!(pos("Topic") < pos("Subscription") && pos("Queue") < pos("Subscription"), "{order:?}");
        assert!(!order.contains(&"Policy"), "topic policies are deploy-only: {order:?}");
    }
}
