//! Parses `q` (and `limit`), returns title completions that tolerate a typo.

use commerce_app::ports::ProductSearch;
use commerce_app::services::search;
use commerce_domain::search::SuggestQuery;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub async fn handle(engine: &impl ProductSearch, req: Request) -> Result<Response<Body>, Error> {
    let params = req.query_string_parameters();
    let result = match SuggestQuery::from_params(params.iter()) {
        Ok(query) => search::suggest(engine, &query).await,
        Err(err) => Err(err),
    };
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::search::demo_index;

    fn get(q: Option<&str>) -> Request {
        let builder = request("GET", "/v1/search/suggest", "/v1/search/suggest");
        match q {
            Some(q) => builder.query("q", q).build(),
            None => builder.build(),
        }
    }

    #[tokio::test]
    async fn when_prefix_has_a_typo_should_still_complete() {
        let (_dir, engine) = demo_index();
        let response = handle(&engine, get(Some("headphnes"))).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], api::PUBLIC_CACHE);
        let body = body_json(&response);
        let texts: Vec<&str> =
            body["suggestions"].as_array().unwrap().iter().filter_map(|s| s["text"].as_str()).collect();
        assert!(!texts.is_empty());
        assert!(texts.iter().all(|t| t.contains("Headphones")), "{texts:?}");
    }

    #[tokio::test]
    async fn when_q_is_missing_should_400() {
        let (_dir, engine) = demo_index();
        let response = handle(&engine, get(None)).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["cache-control"], api::NO_STORE);
        assert_eq!(body_json(&response)["error"]["field"], "q");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        let (_dir, engine) = demo_index();
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/suggest-products").as_ref()) {
            let response = handle(&engine, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
