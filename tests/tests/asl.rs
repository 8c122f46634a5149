//! Structural checks on every state machine in statemachines/: every `Next`, `Default` and Catch target
//! exists and every state is reachable; every `${X}` is a DefinitionSubstitution of the template resource that
//! uses the file (and every substitution is used); every Task retries transient errors with backoff and
//! catches everything into a compensation, and a saga step before the point of no return catches into the
//! compensation chain that ends in a Fail state.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use system_tests::repo_root;

/// Error names a Task must retry: our functions' `Transient`, and Lambda's own transient failures.
const TRANSIENT: &[&str] = &["Transient", "Lambda.ServiceException", "Lambda.TooManyRequestsException"];

fn state_machines() -> Vec<(String, Value)> {
    let dir = repo_root().join("statemachines");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("statemachines/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("read ASL");
            let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((format!("statemachines/{}", path.file_name().unwrap_or_default().to_string_lossy()), doc));
        }
    }
    assert!(!out.is_empty(), "no state machines found");
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn raw_text(file: &str) -> String {
    std::fs::read_to_string(repo_root().join(file)).expect("read ASL")
}

fn template() -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

/// Every state of a document, nested Parallel branches and Map iterators included, with its scope's states.
fn all_scopes(doc: &Value) -> Vec<&serde_json::Map<String, Value>> {
    let mut scopes = Vec::new();
    let mut stack = vec![doc];
    while let Some(machine) = stack.pop() {
        let Some(states) = machine["States"].as_object() else {
            continue;
        };
        scopes.push(states);
        for state in states.values() {
            for branch in state["Branches"].as_array().into_iter().flatten() {
                stack.push(branch);
            }
            for key in ["Iterator", "ItemProcessor"] {
                if state[key].is_object() {
                    stack.push(&state[key]);
                }
            }
        }
    }
    scopes
}

fn targets(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(t) = state[key].as_str() {
            out.push(t.to_owned());
        }
    }
    for list in ["Catch", "Choices"] {
        for item in state[list].as_array().into_iter().flatten() {
            if let Some(t) = item["Next"].as_str() {
                out.push(t.to_owned());
            }
        }
    }
    out
}

#[test]
fn every_next_default_and_catch_target_exists_and_every_state_is_reachable() {
    for (file, doc) in state_machines() {
        for states in all_scopes(&doc) {
            let names: BTreeSet<&str> = states.keys().map(String::as_str).collect();
            let mut reachable = BTreeSet::new();
            let start = doc["StartAt"].as_str().filter(|s| names.contains(s)).map(str::to_owned);
            let mut queue: Vec<String> = start.into_iter().collect();
            for (name, state) in states {
                for target in targets(state) {
                    assert!(names.contains(target.as_str()), "{file}: {name} -> {target}, which does not exist");
                }
                let terminal = matches!(state["Type"].as_str(), Some("Succeed" | "Fail" | "Choice"))
                    || state["End"].as_bool() == Some(true);
                assert!(terminal || state["Next"].is_string(), "{file}: {name} has neither Next nor End");
            }
            while let Some(name) = queue.pop() {
                if reachable.insert(name.clone()) {
                    queue.extend(targets(&states[&name]));
                }
            }
            if doc["States"].as_object() == Some(states) {
                let unreachable: Vec<_> = names.iter().filter(|n| !reachable.contains(**n)).collect();
                assert!(unreachable.is_empty(), "{file}: unreachable states {unreachable:?}");
            }
        }
    }
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').expect("unterminated placeholder");
        out.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_placeholder_is_a_definition_substitution_in_the_template() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (file, _) in state_machines() {
        let users: Vec<(&serde_yaml::Value, &serde_yaml::Value)> = resources
            .iter()
            .filter(|(_, r)| r["Properties"]["DefinitionUri"].as_str() == Some(file.as_str()))
            .collect();
        assert_eq!(users.len(), 1, "{file}: exactly one template resource must use it as DefinitionUri");
        let (id, resource) = users[0];
        let subs: BTreeSet<String> = resource["Properties"]["DefinitionSubstitutions"]
            .as_mapping()
            .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let used = placeholders(&raw_text(&file));
        let undefined: Vec<_> = used.difference(&subs).collect();
        assert!(undefined.is_empty(), "{file}: placeholders not in {id:?}'s DefinitionSubstitutions: {undefined:?}");
        let unused: Vec<_> = subs.difference(&used).collect();
        assert!(unused.is_empty(), "{file}: substitutions never used: {unused:?}");
    }
}

/// The states from which only compensation (and the final Fail) can follow.
fn compensation_chain(states: &serde_json::Map<String, Value>, first: &str) -> BTreeSet<String> {
    let mut chain = BTreeSet::new();
    let mut queue = vec![first.to_owned()];
    while let Some(name) = queue.pop() {
        if chain.insert(name.clone()) {
            queue.extend(targets(&states[&name]));
        }
    }
    chain
}

#[test]
fn every_task_retries_transient_errors_with_backoff_and_catches_into_a_compensation() {
    for (file, doc) in state_machines() {
        for states in all_scopes(&doc) {
            for (name, state) in states {
                if state["Type"].as_str() != Some("Task") {
                    continue;
                }
                let retriers = state["Retry"].as_array().unwrap_or_else(|| panic!("{file}: {name} has no Retry"));
                let is_lambda = state["Resource"].as_str().is_some_and(|r| r.contains("lambda"));
                let retried: BTreeSet<&str> = retriers
                    .iter()
                    .filter(|r| r["BackoffRate"].as_f64().unwrap_or(1.0) > 1.0 && r["MaxAttempts"].as_u64() != Some(0))
                    .flat_map(|r| r["ErrorEquals"].as_array().into_iter().flatten().filter_map(Value::as_str))
                    .collect();
                if is_lambda {
                    for error in TRANSIENT {
                        assert!(retried.contains(error), "{file}: {name} does not retry {error} with backoff");
                    }
                } else {
                    assert!(!retried.is_empty(), "{file}: {name} retries nothing with backoff");
                }
                for never in ["States.ALL", "PaymentDeclined", "OutOfStock", "Gone"] {
                    assert!(!retried.contains(never), "{file}: {name} retries {never}, which is not transient");
                }
                let catch_all = state["Catch"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["ErrorEquals"].as_array().is_some_and(|e| e.iter().any(|x| x == "States.ALL")))
                    .unwrap_or_else(|| panic!("{file}: {name} has no Catch for States.ALL"));
                let target = catch_all["Next"].as_str().unwrap_or_default();
                assert!(states.contains_key(target), "{file}: {name} catches into missing {target}");
            }
        }
    }
}

#[test]
fn checkout_steps_before_confirmation_compensate_in_order_and_end_failed() {
    let file = "statemachines/checkout.asl.json";
    let doc: Value = serde_json::from_str(&raw_text(file)).expect("checkout ASL");
    let states = doc["States"].as_object().expect("States");
    let catch_target =
        |name: &str| -> String { states[name]["Catch"][0]["Next"].as_str().unwrap_or_default().to_owned() };
    for step in ["ReserveStock", "AuthorizePayment", "ConfirmOrder"] {
        assert_eq!(catch_target(step), "ReleaseStock", "{step} must start the compensation");
    }
    let chain = compensation_chain(states, "ReleaseStock");
    let expected: BTreeSet<String> =
        ["ReleaseStock", "VoidPayment", "FailOrder", "CheckoutFailed", "CompensationDeferred"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert_eq!(chain, expected, "the compensation chain releases, voids, fails the order, and ends");
    assert_eq!(states["CheckoutFailed"]["Type"], "Fail");
    // A compensation step that fails for good must not go on to fail the order: the order stays pending (listed
    // for the reaper) instead of being failed with its units or its authorization still held.
    for step in ["ReleaseStock", "VoidPayment", "FailOrder"] {
        assert_eq!(catch_target(step), "CompensationDeferred", "{step} must leave the order to the reaper");
    }
    assert_eq!(states["ReleaseStock"]["Next"], "VoidPayment");
    assert_eq!(states["VoidPayment"]["Next"], "FailOrder");
    assert_eq!(states["FailOrder"]["Next"], "CheckoutFailed");
    assert_eq!(states["CompensationDeferred"]["Type"], "Fail");
    let order: Vec<&str> = ["ReserveStock", "AuthorizePayment", "ConfirmOrder", "PublishOrderPlaced"]
        .windows(2)
        .map(|w| {
            assert_eq!(states[w[0]]["Next"], w[1], "{} must be followed by {}", w[0], w[1]);
            w[0]
        })
        .collect();
    assert_eq!(order.len(), 3);
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, state) in states {
        names.insert(name, state["Type"].as_str().unwrap_or_default());
    }
    assert_eq!(names.get("PublishOrderPlaced"), Some(&"Task"));
    assert!(states["PublishOrderPlaced"]["Resource"].as_str().is_some_and(|r| r.ends_with(":sqs:sendMessage")));
}
