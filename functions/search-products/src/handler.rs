//! Parses the query string into a validated search, runs it, returns hits, total, facets and a cursor.

use commerce_app::ports::ProductSearch;
use commerce_app::services::search;
use commerce_domain::search::SearchQuery;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub async fn handle(engine: &impl ProductSearch, req: Request) -> Result<Response<Body>, Error> {
    let params = req.query_string_parameters();
    let result = match SearchQuery::from_params(params.iter()) {
        Ok(query) => search::search(engine, &query).await,
        Err(err) => Err(err),
    };
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::search::demo_index;

    fn get(pairs: &[(&str, &str)]) -> Request {
        let mut builder = request("GET", "/v1/search", "/v1/search");
        for (k, v) in pairs {
            builder = builder.query(k, v);
        }
        builder.build()
    }

    #[tokio::test]
    async fn when_searching_a_title_word_should_return_hits_facets_and_highlights() {
        let (_dir, engine) = demo_index();
        let response = handle(&engine, get(&[("q", "laptop"), ("page_size", "5")])).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], api::PUBLIC_CACHE);
        let body = body_json(&response);
        assert_eq!(body["hits"].as_array().unwrap().len(), 5);
        assert!(body["total"].as_u64().unwrap() >= 30, "{}", body["total"]);
        assert!(body["hits"][0]["highlights"]["title"].as_str().unwrap().contains("<em>"));
        assert!(body["facets"]["brand"].as_array().is_some_and(|b| !b.is_empty()));
        assert!(body["next_cursor"].is_string());
    }

    #[tokio::test]
    async fn when_a_parameter_is_bad_should_400_naming_it() {
        let (_dir, engine) = demo_index();
        for (pairs, field) in [
            (vec![("price_min", "-5")], "price_min"),
            (vec![("sort", "cheapest")], "sort"),
            (vec![("page_size", "500")], "page_size"),
        ] {
            let response = handle(&engine, get(&pairs)).await.unwrap();
            assert_eq!(response.status(), 400);
            assert_eq!(response.headers()["cache-control"], api::NO_STORE);
            let body = body_json(&response);
            assert_eq!(body["error"]["code"], "invalid_parameter");
            assert_eq!(body["error"]["field"], field);
        }
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        let (_dir, engine) = demo_index();
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/search-products").as_ref()) {
            let response = handle(&engine, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
