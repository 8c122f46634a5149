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

const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
const ALL_METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"];

/// The logical id of a `!Ref`.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_sequence().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// A CloudFront path pattern: `*` any characters (`/` too), `?` one.
fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.split_once(['*', '?']) {
        None => pattern == path,
        Some((literal, rest)) => {
            let Some(tail) = path.strip_prefix(literal) else { return false };
            if pattern[literal.len()..].starts_with('?') {
                return tail.chars().next().is_some_and(|c| path_matches(rest, &tail[c.len_utf8()..]));
            }
            (0..=tail.len()).filter(|i| tail.is_char_boundary(*i)).any(|i| path_matches(rest, &tail[i..]))
        }
    }
}

#[test]
fn the_cdn_caches_only_public_reads_and_passes_everything_else_through() {
    let template = load_yaml("template.yaml");
    let config = &template["Resources"]["ApiDistribution"]["Properties"]["DistributionConfig"];
    let origin = &config["Origins"][0];
    assert_eq!(origin["CustomOriginConfig"]["OriginProtocolPolicy"].as_str(), Some("https-only"));

    let default = &config["DefaultCacheBehavior"];
    assert_eq!(default["CachePolicyId"].as_str(), Some(CACHING_DISABLED), "the default caches nothing");
    assert_eq!(default["OriginRequestPolicyId"].as_str(), Some(ALL_VIEWER_EXCEPT_HOST), "Authorization forwarded");
    assert_eq!(strings(&default["AllowedMethods"]), ALL_METHODS);

    let policy = &template["Resources"]["PublicReadCachePolicy"]["Properties"]["CachePolicyConfig"];
    assert_eq!((policy["MinTTL"].as_u64(), policy["DefaultTTL"].as_u64()), (Some(0), Some(0)), "the origin decides");
    let s_maxage: u64 = commerce_lambda::api::PUBLIC_CACHE
        .split(", ")
        .find_map(|d| d.strip_prefix("s-maxage="))
        .and_then(|v| v.parse().ok())
        .expect("s-maxage in PUBLIC_CACHE");
    assert!(policy["MaxTTL"].as_u64().is_some_and(|max| max >= s_maxage), "MaxTTL cuts s-maxage");
    let key = &policy["ParametersInCacheKeyAndForwardedToOrigin"];
    assert_eq!(key["QueryStringsConfig"]["QueryStringBehavior"].as_str(), Some("all"));
    assert_eq!(key["CookiesConfig"]["CookieBehavior"].as_str(), Some("none"));
    assert!(!strings(&key["HeadersConfig"]["Headers"]).iter().any(|h| h.eq_ignore_ascii_case("authorization")));

    let behaviors = config["CacheBehaviors"].as_sequence().expect("CacheBehaviors");
    let mut patterns = Vec::new();
    for behavior in behaviors {
        let pattern = behavior["PathPattern"].as_str().expect("PathPattern");
        assert_eq!(reference(&behavior["CachePolicyId"]), Some("PublicReadCachePolicy"), "{pattern}");
        assert_eq!(behavior["OriginRequestPolicyId"].as_str(), Some(ALL_VIEWER_EXCEPT_HOST), "{pattern}");
        assert_eq!(strings(&behavior["AllowedMethods"]), ALL_METHODS, "{pattern}: writes pass through");
        assert_eq!(strings(&behavior["CachedMethods"]), ["GET", "HEAD"], "{pattern}");
        patterns.push(pattern);
    }

    let mut cached_gets = BTreeSet::new();
    for (id, function) in functions(&template) {
        let Some(events) = function["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events.iter().filter(|(_, e)| e["Type"].as_str() == Some("HttpApi")) {
            let props = &event["Properties"];
            let path = props["Path"].as_str().expect("Path");
            let get = props["Method"].as_str().is_some_and(|m| m.eq_ignore_ascii_case("GET"));
            if get && patterns.iter().any(|p| path_matches(p, path)) {
                let public = props["Auth"]["Authorizer"].as_str() == Some("NONE");
                assert!(public, "{id}: GET {path} is cached, and CloudFront drops its Authorization");
                cached_gets.insert(path.to_owned());
            }
        }
    }
    let expected = ["/v1/categories", "/v1/products", "/v1/products/{product_id}", "/v1/search", "/v1/search/suggest"];
    for path in expected {
        assert!(cached_gets.contains(path), "GET {path} is not behind a cached behavior");
    }
    assert!(path_matches("/v1/products*", "/v1/products/p1/reviews") && !path_matches("/v1/search*", "/v1/seller/x"));
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
