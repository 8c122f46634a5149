//! Agreement between template.yaml, docs/openapi.yaml, the function crates and events/.

use serde_yaml::Value;
use std::collections::BTreeSet;
use system_tests::repo_root;

fn load_yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn functions(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

/// (METHOD, path) of every HttpApi event in the template.
fn template_routes(template: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (_, function) in functions(template) {
        let Some(events) = function["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let props = &event["Properties"];
                let method = props["Method"].as_str().expect("HttpApi Method").to_uppercase();
                let path = props["Path"].as_str().expect("HttpApi Path").to_owned();
                assert!(routes.insert((method.clone(), path.clone())), "route declared twice: {method} {path}");
            }
        }
    }
    routes
}

fn openapi_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("openapi paths") {
        let path = path.as_str().expect("path string");
        for (method, _) in item.as_mapping().expect("path item") {
            let method = method.as_str().unwrap_or_default();
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method) {
                routes.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn openapi_and_template_declare_the_same_routes() {
    let template = load_yaml("template.yaml");
    let doc = load_yaml("docs/openapi.yaml");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1 expected");
    let in_template = template_routes(&template);
    let in_openapi = openapi_routes(&doc);
    let missing_in_openapi: Vec<_> = in_template.difference(&in_openapi).collect();
    let missing_in_template: Vec<_> = in_openapi.difference(&in_template).collect();
    assert!(
        missing_in_openapi.is_empty() && missing_in_template.is_empty(),
        "routes only in template.yaml: {missing_in_openapi:?}\nroutes only in openapi.yaml: {missing_in_template:?}"
    );
    assert!(!in_template.is_empty());
}

#[test]
fn every_function_has_a_crate_and_every_crate_a_function() {
    let template = load_yaml("template.yaml");
    let mut binaries = BTreeSet::new();
    for (id, function) in functions(&template) {
        let metadata = &function["Metadata"];
        assert_eq!(metadata["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}: BuildMethod");
        let binary = metadata["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{id}: Binary"));
        binaries.insert(binary.to_owned());
    }
    let crates: BTreeSet<String> = std::fs::read_dir(repo_root().join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(binaries, crates, "template binaries vs functions/ crates");
}

#[test]
fn every_events_folder_names_a_function_and_every_api_function_has_events() {
    let template = load_yaml("template.yaml");
    let mut api_binaries = BTreeSet::new();
    let mut all_binaries = BTreeSet::new();
    for (_, function) in functions(&template) {
        let binary = function["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_default().to_owned();
        let has_api = function["Properties"]["Events"]
            .as_mapping()
            .is_some_and(|events| events.iter().any(|(_, e)| e["Type"].as_str() == Some("HttpApi")));
        if has_api {
            api_binaries.insert(binary.clone());
        }
        all_binaries.insert(binary);
    }
    let folders: BTreeSet<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let unknown: Vec<_> = folders.difference(&all_binaries).collect();
    assert!(unknown.is_empty(), "events/ folders with no function: {unknown:?}");
    let without_events: Vec<_> = api_binaries.difference(&folders).collect();
    assert!(without_events.is_empty(), "API functions without sample events: {without_events:?}");
}

#[test]
fn every_function_policy_is_least_privilege() {
    let template = load_yaml("template.yaml");
    for (id, function) in functions(&template) {
        let policies = serde_yaml::to_string(&function["Properties"]["Policies"]).unwrap_or_default();
        for broad in ["FullAccess", "\"*\"", "dynamodb:*", "sqs:*", "states:*", "es:*"] {
            assert!(!policies.contains(broad), "{id}: broad policy {broad}");
        }
        assert!(!policies.contains("Action: '*'") && !policies.contains("Action: \"*\""), "{id}: Action *");
    }
}

#[test]
fn the_documented_error_codes_are_the_registry() {
    let doc = load_yaml("docs/openapi.yaml");
    let documented: BTreeSet<String> = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        ["code"]["enum"]
        .as_sequence()
        .expect("Error.code enum in docs/openapi.yaml")
        .iter()
        .map(|v| v.as_str().expect("a code").to_owned())
        .collect();
    let registry: BTreeSet<String> =
        commerce_domain::error::ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(registry.len(), commerce_domain::error::ErrorCode::ALL.len(), "a code is spelled twice");
    assert_eq!(documented, registry, "docs/openapi.yaml Error.code vs ErrorCode::ALL");
}
