//! The architecture's direction, checked: the crates' dependency graph (from `cargo metadata`) and the modules
//! inside each library crate (from their `crate::` paths). docs/ARCHITECTURE.md draws what is checked here.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use system_tests::repo_root;

/// The workspace's resolved dependency graph: package name -> (dependency name, kinds) for every package.
struct Graph {
    deps: BTreeMap<String, Vec<(String, BTreeSet<String>)>>,
    manifests: BTreeMap<String, String>,
}

/// The host's target triple (what the functions are built for here; `cargo lambda` builds the same graph).
fn host() -> String {
    let output = Command::new("rustc").arg("-vV").output().expect("run rustc -vV");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("host line").to_owned()
}

fn metadata() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host(), "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let meta: Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let mut names = BTreeMap::new();
    let mut manifests = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        names.insert(package["id"].as_str().expect("id").to_owned(), name.clone());
        manifests.insert(name, package["manifest_path"].as_str().unwrap_or_default().to_owned());
    }
    let mut deps = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve") {
        let name = names[node["id"].as_str().expect("id")].clone();
        let list = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .map(|dep| {
                let kinds = dep["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                    .collect();
                (names[dep["pkg"].as_str().expect("pkg")].clone(), kinds)
            })
            .collect();
        deps.insert(name, list);
    }
    Graph { deps, manifests }
}

impl Graph {
    /// Every package `root` links in a release build (normal and build dependencies, transitively).
    fn normal_closure(&self, root: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![root.to_owned()];
        while let Some(name) = stack.pop() {
            for (dep, kinds) in self.deps.get(&name).map(Vec::as_slice).unwrap_or_default() {
                if kinds.iter().any(|k| k != "dev") && seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen
    }

    /// The workspace's own packages whose manifest is under `dir`.
    fn members_under(&self, dir: &str) -> Vec<String> {
        let root = repo_root().join(dir);
        self.manifests.iter().filter(|(_, path)| Path::new(path).starts_with(&root)).map(|(n, _)| n.clone()).collect()
    }
}

#[test]
fn the_domain_links_no_aws_sdk_lambda_runtime_or_async_runtime() {
    let closure = metadata().normal_closure("commerce-domain");
    let forbidden: Vec<&String> = closure
        .iter()
        .filter(|name| {
            name.starts_with("aws-sdk-")
                || name.starts_with("aws-smithy")
                || name.starts_with("lambda_")
                || name.starts_with("aws_lambda_events")
                || name.as_str() == "tokio"
                || name.starts_with("commerce-")
        })
        .collect();
    assert!(forbidden.is_empty(), "commerce-domain links {forbidden:?}");
}

#[test]
fn the_layers_depend_one_way() {
    let graph = metadata();
    let ours = |name: &str| -> BTreeSet<String> {
        graph.normal_closure(name).into_iter().filter(|n| n.starts_with("commerce-")).collect()
    };
    let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<String>>();
    assert_eq!(ours("commerce-app"), set(&["commerce-domain"]));
    assert_eq!(ours("commerce-aws"), set(&["commerce-app", "commerce-domain"]));
    assert_eq!(ours("commerce-lambda"), set(&["commerce-app", "commerce-aws", "commerce-domain"]));
}

#[test]
fn no_function_or_library_links_the_test_kit_or_the_demo_data() {
    let graph = metadata();
    let mut production = graph.members_under("functions");
    production.extend(["commerce-domain", "commerce-app", "commerce-aws", "commerce-lambda"].map(String::from));
    assert!(production.len() > 40, "functions found: {production:?}");
    for name in production {
        let closure = graph.normal_closure(&name);
        assert!(!closure.contains("commerce-testkit"), "{name} links the test kit");
        assert!(!closure.contains("commerce-demo"), "{name} links the demo data");
    }
}

/// Whether a module file only declares submodules (`pub mod a; pub mod b;`): a namespace, whose children
/// are the units the graph is drawn between.
fn is_namespace(src: &Path, module: &str) -> bool {
    let file = [src.join(format!("{module}.rs")), src.join(module).join("mod.rs")].into_iter().find(|p| p.exists());
    let Some(file) = file else { return false };
    let text = std::fs::read_to_string(file).expect("read module");
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).all(|l| l.starts_with("pub mod "))
}

/// The modules of a crate and, for each, the crate modules its production code names (`crate::<module>`):
/// top-level modules, or a namespace module's children (`services::cart`).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    let unit = |first: &str, second: Option<&str>| -> String {
        match second {
            Some(child) if is_namespace(src, first) => format!("{first}::{child}"),
            _ => first.to_owned(),
        }
    };
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src").with_extension("");
            let parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if parts[0] == "lib" || (parts.len() == 1 && is_namespace(src, &parts[0])) {
                continue;
            }
            let module = unit(&parts[0], parts.get(1).map(String::as_str));
            let text = std::fs::read_to_string(&path).expect("read source");
            // Test modules may reach anywhere; only production code counts.
            let production = text.split("#[cfg(test)]").next().unwrap_or_default();
            let uses = graph.entry(module.clone()).or_default();
            for (i, _) in production.match_indices("crate::") {
                let segments: Vec<&str> = production[i + "crate::".len()..]
                    .split("::")
                    .take(2)
                    .map(|s| s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default())
                    .collect();
                let first = segments[0];
                if !first.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                    continue;
                }
                let target = unit(first, segments.get(1).copied().filter(|s| !s.is_empty()));
                if target != module {
                    uses.insert(target);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if any, as the path that closes it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_library_crate_has_a_module_cycle() {
    for dir in ["shared/domain/src", "shared/app/src", "shared/aws/src", "shared/lambda/src"] {
        let graph = module_graph(&repo_root().join(dir));
        assert!(graph.len() > 2, "{dir}: modules {graph:?}");
        assert_eq!(cycle(&graph), None, "{dir}: module cycle");
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
