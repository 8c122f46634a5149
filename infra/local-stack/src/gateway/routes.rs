//! Route selection as API Gateway HTTP APIs do it: a route matches on method (or `ANY`) and path template
//! (`{param}` one segment, `{proxy+}` the rest); among matches the most specific wins, comparing segment by
//! segment (literal over `{param}` over `{proxy+}`), then an explicit method over `ANY`.

use std::cmp::Ordering;
use std::collections::HashMap;

use percent_encoding::percent_decode_str;

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

/// A compiled route: its template and its index in the plan's route list.
#[derive(Debug, Clone)]
pub struct Route {
    pub index: usize,
    /// `GET /v1/products/{product_id}`, as the event's `routeKey`.
    pub route_key: String,
    method: String,
    segments: Vec<Segment>,
}

/// A successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub index: usize,
    pub route_key: String,
    /// URL-decoded path parameters.
    pub path_parameters: HashMap<String, String>,
}

/// The routes of one API.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Compiles `(method, path template)` pairs; a malformed template is an error naming it.
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> anyhow::Result<Self> {
        let mut compiled = Vec::new();
        for (index, (method, path)) in routes.into_iter().enumerate() {
            let method = method.to_ascii_uppercase();
            let segments = parse_template(path)?;
            compiled.push(Route { index, route_key: format!("{method} {path}"), method, segments });
        }
        Ok(Self { routes: compiled })
    }

    /// The most specific route for `method` and the raw (still percent-encoded) `path`.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched> {
        let parts: Vec<&str> = split(path);
        let mut best: Option<(&Route, HashMap<String, String>)> = None;
        for route in &self.routes {
            if route.method != method && route.method != "ANY" {
                continue;
            }
            let Some(params) = match_segments(&route.segments, &parts) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((current, _)) => specificity(route, current) == Ordering::Less,
            };
            if better {
                best = Some((route, params));
            }
        }
        best.map(|(route, path_parameters)| Matched {
            index: route.index,
            route_key: route.route_key.clone(),
            path_parameters,
        })
    }
}

fn split(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

fn parse_template(path: &str) -> anyhow::Result<Vec<Segment>> {
    if !path.starts_with('/') {
        anyhow::bail!("route path {path:?} must start with '/'");
    }
    let parts = split(path);
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if name.ends_with('+') => {
                if i + 1 != parts.len() {
                    anyhow::bail!("route path {path:?}: a greedy {{{name}}} must be the last segment");
                }
                Segment::Greedy(name.trim_end_matches('+').to_string())
            }
            Some(name) if !name.is_empty() => Segment::Param(name.to_string()),
            Some(_) => anyhow::bail!("route path {path:?} has an empty parameter"),
            None => Segment::Literal((*part).to_string()),
        };
        segments.push(segment);
    }
    Ok(segments)
}

fn match_segments(template: &[Segment], parts: &[&str]) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    for (i, segment) in template.iter().enumerate() {
        match segment {
            Segment::Literal(literal) => {
                if parts.get(i).map(|p| decode(p)) != Some(literal.clone()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let part = parts.get(i).filter(|p| !p.is_empty())?;
                params.insert(name.clone(), decode(part));
            }
            Segment::Greedy(name) => {
                let rest = parts.get(i..).filter(|rest| !rest.is_empty() && !rest.iter().all(|p| p.is_empty()))?;
                params.insert(name.clone(), decode(&rest.join("/")));
                return Some(params);
            }
        }
    }
    (template.len() == parts.len()).then_some(params)
}

fn decode(part: &str) -> String {
    percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// `Less` when `a` is more specific than `b`.
fn specificity(a: &Route, b: &Route) -> Ordering {
    for (sa, sb) in a.segments.iter().zip(&b.segments) {
        match sa.rank().cmp(&sb.rank()) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    b.segments.len().cmp(&a.segments.len()).then_with(|| (a.method == "ANY").cmp(&(b.method == "ANY")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new([
            ("GET", "/v1/products/{product_id}"),
            ("GET", "/v1/products/featured"),
            ("POST", "/v1/seller/products"),
            ("ANY", "/v1/seller/products"),
            ("ANY", "/files/{proxy+}"),
            ("GET", "/files/{dir}/{name}"),
            ("GET", "/"),
        ])
        .unwrap()
    }

    #[test]
    fn literal_beats_parameter_and_parameters_are_decoded() {
        let t = table();
        assert_eq!(t.find("GET", "/v1/products/featured").unwrap().route_key, "GET /v1/products/featured");
        let m = t.find("GET", "/v1/products/prd%2001").unwrap();
        assert_eq!(m.route_key, "GET /v1/products/{product_id}");
        assert_eq!(m.path_parameters["product_id"], "prd 01");
    }

    #[test]
    fn explicit_method_beats_any_and_any_matches_other_methods() {
        let t = table();
        assert_eq!(t.find("POST", "/v1/seller/products").unwrap().route_key, "POST /v1/seller/products");
        assert_eq!(t.find("DELETE", "/v1/seller/products").unwrap().route_key, "ANY /v1/seller/products");
    }

    #[test]
    fn greedy_takes_the_rest_and_loses_to_exact_parameters() {
        let t = table();
        let m = t.find("PUT", "/files/a/b/c.txt").unwrap();
        assert_eq!(m.route_key, "ANY /files/{proxy+}");
        assert_eq!(m.path_parameters["proxy"], "a/b/c.txt");
        assert_eq!(t.find("GET", "/files/a/b").unwrap().route_key, "GET /files/{dir}/{name}");
        assert!(t.find("GET", "/files").is_none(), "a greedy segment needs at least one segment");
    }

    #[test]
    fn no_match_is_none() {
        let t = table();
        assert!(t.find("GET", "/v1/nothing").is_none());
        assert!(t.find("DELETE", "/v1/products/x").is_none());
        assert!(t.find("GET", "/v1/products/x/extra").is_none());
        assert!(t.find("GET", "/v1/products/").is_none(), "an empty segment is no parameter");
        assert_eq!(t.find("GET", "/").unwrap().route_key, "GET /");
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(RouteTable::new([("GET", "/a/{proxy+}/b")]).is_err());
        assert!(RouteTable::new([("GET", "a/b")]).is_err());
        assert!(RouteTable::new([("GET", "/a/{}")]).is_err());
    }
}
