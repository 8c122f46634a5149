//! What the bench needs from template.yaml: each function's binary, memory size and environment, with the
//! intrinsics (`!Ref`, `!GetAtt`, `!Sub`) resolved to fake but well-formed values (table names, queue URLs,
//! ARNs, parameter defaults). No value points at real AWS: the bench sets `AWS_ENDPOINT_URL` to itself.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const STACK: &str = "commerce-bench";

/// One function of the template.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the crate's binary name.
    pub binary: String,
    pub memory_mb: u64,
    /// `Globals.Function.Environment.Variables` merged with the function's own, resolved.
    pub environment: BTreeMap<String, String>,
}

/// Every function built with `rust-cargolambda`, in template order of logical id.
pub fn load(path: &Path) -> Result<Vec<Function>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// [`load`] on template text.
pub fn parse(text: &str) -> Result<Vec<Function>> {
    let doc: Value = serde_yaml::from_str(text)?;
    let empty = Value::Mapping(Mapping::new());
    let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or_else(|| anyhow!("no Resources"))?;
    let globals = doc.get("Globals").and_then(|g| g.get("Function")).unwrap_or(&empty);
    let names = Names { doc: &doc };
    let mut functions = Vec::new();
    for (id, resource) in resources {
        let id = id.as_str().ok_or_else(|| anyhow!("resource id is not a string"))?;
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(binary) =
            resource.get("Metadata").and_then(|m| m.get("BuildProperties")).and_then(|b| b.get("Binary"))
        else {
            continue;
        };
        let props = resource.get("Properties").unwrap_or(&empty);
        let memory = props.get("MemorySize").or_else(|| globals.get("MemorySize"));
        let memory_mb = memory.map(|m| names.resolve(m, id)).transpose()?.map(|m| m.parse()).transpose()?;
        let mut environment = BTreeMap::new();
        for vars in [globals, props].iter().filter_map(|p| p.get("Environment")?.get("Variables")?.as_mapping()) {
            for (name, value) in vars {
                let name = name.as_str().ok_or_else(|| anyhow!("{id}: variable name is not a string"))?;
                environment.insert(name.to_owned(), names.resolve(value, &format!("{id}.{name}"))?);
            }
        }
        functions.push(Function {
            logical_id: id.to_owned(),
            binary: names.resolve(binary, id)?,
            memory_mb: memory_mb.unwrap_or(128),
            environment,
        });
    }
    functions.sort_by(|a, b| a.binary.cmp(&b.binary));
    Ok(functions)
}

struct Names<'a> {
    doc: &'a Value,
}

impl Names<'_> {
    /// A scalar, or an intrinsic resolved to a fake value of the right shape.
    fn resolve(&self, value: &Value, at: &str) -> Result<String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Tagged(tagged) => self.intrinsic(tagged.tag.to_string().trim_start_matches('!'), &tagged.value, at),
            Value::Mapping(m) if m.len() == 1 => {
                let (key, arg) = m.iter().next().ok_or_else(|| anyhow!("{at}: empty mapping"))?;
                let key = key.as_str().unwrap_or_default();
                self.intrinsic(key.strip_prefix("Fn::").unwrap_or(key), arg, at)
            }
            other => bail!("{at}: cannot resolve {other:?}"),
        }
    }

    fn intrinsic(&self, name: &str, arg: &Value, at: &str) -> Result<String> {
        match (name, arg) {
            ("Ref", Value::String(target)) => self.reference(target, at),
            ("GetAtt", Value::String(path)) => self.attribute(path, at),
            ("GetAtt", Value::Sequence(parts)) => {
                let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                self.attribute(&parts.join("."), at)
            }
            ("Sub", Value::String(text)) => self.substitute(text, at),
            ("If", Value::Sequence(parts)) if parts.len() == 3 => {
                let condition = parts[0].as_str().ok_or_else(|| anyhow!("{at}: !If names no condition"))?;
                let branch = if self.condition(condition, at)? { &parts[1] } else { &parts[2] };
                self.resolve(branch, at)
            }
            _ => bail!("{at}: the bench does not resolve {name} {arg:?}"),
        }
    }

    /// A named condition, evaluated with the parameters' defaults.
    fn condition(&self, name: &str, at: &str) -> Result<bool> {
        let body = self
            .doc
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| anyhow!("{at}: unknown condition {name}"))?;
        self.truth(body, at)
    }

    /// `!Not`, `!Equals`, `!And`, `!Or` and `!Condition` over resolved values.
    fn truth(&self, value: &Value, at: &str) -> Result<bool> {
        let (name, arg) = match value {
            Value::Tagged(tagged) => (tagged.tag.to_string().trim_start_matches('!').to_owned(), &tagged.value),
            Value::Mapping(m) if m.len() == 1 => {
                let (key, arg) = m.iter().next().ok_or_else(|| anyhow!("{at}: empty condition"))?;
                (key.as_str().unwrap_or_default().trim_start_matches("Fn::").to_owned(), arg)
            }
            other => bail!("{at}: cannot evaluate the condition {other:?}"),
        };
        let items = || arg.as_sequence().map(Vec::as_slice).unwrap_or_default();
        Ok(match name.as_str() {
            "Not" => !self.truth(items().first().ok_or_else(|| anyhow!("{at}: empty !Not"))?, at)?,
            "Equals" => match items() {
                [a, b] => self.resolve(a, at)? == self.resolve(b, at)?,
                _ => bail!("{at}: !Equals takes two values"),
            },
            "And" => items().iter().map(|c| self.truth(c, at)).collect::<Result<Vec<_>>>()?.into_iter().all(|b| b),
            "Or" => items().iter().map(|c| self.truth(c, at)).collect::<Result<Vec<_>>>()?.into_iter().any(|b| b),
            "Condition" => self.condition(arg.as_str().unwrap_or_default(), at)?,
            other => bail!("{at}: the bench does not evaluate {other}"),
        })
    }

    fn resource_type(&self, id: &str) -> Option<&str> {
        self.doc.get("Resources")?.get(id)?.get("Type")?.as_str()
    }

    fn reference(&self, target: &str, at: &str) -> Result<String> {
        let pseudo = match target {
            "AWS::Region" => Some(REGION),
            "AWS::AccountId" => Some(ACCOUNT),
            "AWS::StackName" => Some(STACK),
            "AWS::Partition" => Some("aws"),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(value.to_owned());
        }
        if let Some(param) = self.doc.get("Parameters").and_then(|p| p.get(target)) {
            let default = param.get("Default").ok_or_else(|| anyhow!("{at}: parameter {target} has no Default"))?;
            return self.resolve(default, at);
        }
        let name = format!("{STACK}-{target}");
        Ok(match self.resource_type(target).ok_or_else(|| anyhow!("{at}: !Ref to unknown {target}"))? {
            "AWS::SQS::Queue" => format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
            "AWS::Cognito::UserPool" => format!("{REGION}_bench{}", target.len()),
            "AWS::Cognito::UserPoolClient" => format!("benchclient{}", target.len()),
            t @ ("AWS::SecretsManager::Secret"
            | "AWS::Serverless::StateMachine"
            | "AWS::StepFunctions::StateMachine"
            | "AWS::SNS::Topic") => arn(t, &name),
            _ => name,
        })
    }

    fn attribute(&self, path: &str, at: &str) -> Result<String> {
        let (id, attr) = path.split_once('.').ok_or_else(|| anyhow!("{at}: !GetAtt {path} has no attribute"))?;
        let ty = self.resource_type(id).ok_or_else(|| anyhow!("{at}: !GetAtt of unknown {id}"))?;
        let name = format!("{STACK}-{id}");
        Ok(match attr {
            "Arn" => arn(ty, &name),
            "StreamArn" => format!("{}/stream/2024-01-01T00:00:00.000", arn(ty, &name)),
            "QueueUrl" => format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
            "DomainEndpoint" => format!("search-{}.{REGION}.es.amazonaws.com", name.to_lowercase()),
            "ApiEndpoint" => format!("https://{}.execute-api.{REGION}.amazonaws.com", name.to_lowercase()),
            _ => format!("{name}-{attr}"),
        })
    }

    fn substitute(&self, text: &str, at: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or_else(|| anyhow!("{at}: unclosed ${{ in !Sub"))? + start;
            let name = &rest[start + 2..end];
            match name.strip_prefix('!') {
                Some(literal) => out.push_str(&format!("${{{literal}}}")),
                None if name.contains('.') && !name.starts_with("AWS::") => out.push_str(&self.attribute(name, at)?),
                None => out.push_str(&self.reference(name, at)?),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn arn(resource_type: &str, name: &str) -> String {
    let (service, kind) = match resource_type {
        "AWS::DynamoDB::Table" => ("dynamodb", "table/"),
        "AWS::SQS::Queue" => ("sqs", ""),
        "AWS::SecretsManager::Secret" => ("secretsmanager", "secret:"),
        "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => ("states", "stateMachine:"),
        "AWS::Cognito::UserPool" => ("cognito-idp", "userpool/"),
        "AWS::OpenSearchService::Domain" => ("es", "domain/"),
        "AWS::SNS::Topic" => ("sns", ""),
        "AWS::Serverless::Function" => ("lambda", "function:"),
        _ => ("bench", ""),
    };
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{kind}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Provider:
    Type: String
    Default: sandbox
Globals:
  Function:
    MemorySize: 256
    Environment:
      Variables:
        SHARED: "1"
Resources:
  Orders:
    Type: AWS::DynamoDB::Table
  Events:
    Type: AWS::SQS::Queue
  Key:
    Type: AWS::SecretsManager::Secret
  Search:
    Type: AWS::OpenSearchService::Domain
  PayFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: pay
    Properties:
      MemorySize: 128
      Environment:
        Variables:
          ORDERS_TABLE: !Ref Orders
          QUEUE_URL: !Ref Events
          KEY_ARN: !Ref Key
          PROVIDER: !Ref Provider
          SEARCH_ENDPOINT: !GetAtt Search.DomainEndpoint
          ORDERS_ARN: { "Fn::GetAtt": [Orders, Arn] }
          NAME: !Sub ${AWS::StackName}-pay-${Orders}
  NotRust:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
"#;

    #[test]
    fn when_a_function_uses_intrinsics_should_resolve_them_to_fake_values_of_the_right_shape() {
        let functions = parse(TEMPLATE).unwrap();
        assert_eq!(functions.len(), 1, "only functions with a cargo-lambda binary");
        let f = &functions[0];
        assert_eq!((f.logical_id.as_str(), f.binary.as_str(), f.memory_mb), ("PayFunction", "pay", 128));
        let env = |k: &str| f.environment[k].as_str();
        assert_eq!(env("SHARED"), "1");
        assert_eq!(env("ORDERS_TABLE"), "commerce-bench-Orders");
        assert_eq!(env("QUEUE_URL"), "https://sqs.us-east-1.amazonaws.com/123456789012/commerce-bench-Events");
        assert_eq!(env("KEY_ARN"), "arn:aws:secretsmanager:us-east-1:123456789012:secret:commerce-bench-Key");
        assert_eq!(env("PROVIDER"), "sandbox");
        assert_eq!(env("SEARCH_ENDPOINT"), "search-commerce-bench-search.us-east-1.es.amazonaws.com");
        assert_eq!(env("ORDERS_ARN"), "arn:aws:dynamodb:us-east-1:123456789012:table/commerce-bench-Orders");
        assert_eq!(env("NAME"), "commerce-bench-pay-commerce-bench-Orders");
    }

    #[test]
    fn when_reading_the_project_template_should_resolve_every_function() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let functions = load(&path).unwrap();
        let crates = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions")).unwrap().count();
        assert_eq!(functions.len(), crates, "every functions/<name> crate has a template function");
        assert!(functions.iter().all(|f| f.memory_mb >= 128));
        // `!If` with the parameters' defaults: no ShopUrl, so the API's own URL.
        let mail = functions.iter().find(|f| f.binary == "send-emails").unwrap();
        assert_eq!(mail.environment["SHOP_URL"], "https://commerce-bench-httpapi.execute-api.us-east-1.amazonaws.com");
    }
}
