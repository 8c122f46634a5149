//! Reads an active product's page by id: the product, each variant's availability (`in_stock`, `low_stock`,
//! `out_of_stock`, never the count) and the rating summary; anyone may call it.

use commerce_app::ports::{ProductReader, ReviewReader, StockReader};
use commerce_app::services::catalog;
use commerce_domain::ids::ProductId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

/// What the page reads: the catalog, the stock levels and the ratings.
pub struct Deps<C, S, R> {
    pub catalog: C,
    pub stock: S,
    pub ratings: R,
}

pub async fn handle<C, S, R>(deps: &Deps<C, S, R>, req: Request) -> Result<Response<Body>, Error>
where
    C: ProductReader,
    S: StockReader,
    R: ReviewReader,
{
    let result = async {
        let product_id: ProductId = api::path(&req, "product_id")?;
        catalog::product_page(&deps.catalog, &deps.stock, &deps.ratings, &product_id).await
    }
    .await;
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ProductUpdater;
    use commerce_demo::catalog::FIRST_PRODUCT_ID;
    use commerce_domain::inventory::SetStock;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};

    type Fixture = Deps<InMemoryCatalog, InMemoryInventory, InMemoryReviews>;

    fn demo() -> Fixture {
        Deps { catalog: demo_store(), stock: InMemoryInventory::new(), ratings: InMemoryReviews::new() }
    }

    fn get(id: &str) -> Request {
        request("GET", "/v1/products/{product_id}", &format!("/v1/products/{id}")).path_param("product_id", id).build()
    }

    #[tokio::test]
    async fn when_product_is_active_should_200_without_a_token() {
        let response = handle(&demo(), get(FIRST_PRODUCT_ID)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["product_id"], FIRST_PRODUCT_ID);
        assert!(body["variants"].as_array().is_some_and(|v| !v.is_empty()));
        assert_eq!(body["price_min"]["currency"], "USD");
    }

    #[tokio::test]
    async fn when_stock_and_reviews_exist_should_show_availability_and_the_rating_never_the_count() {
        let deps = demo();
        let product = deps.catalog.stored(FIRST_PRODUCT_ID).unwrap();
        let skus: Vec<String> = product.variants.iter().map(|v| v.sku.clone()).collect();
        for (sku, on_hand) in skus.iter().zip([40, 3]) {
            let set = SetStock { on_hand, safety_stock: None };
            commerce_app::ports::StockWriter::set_stock(&deps.stock, sku, "wh_east", &set).await.unwrap();
        }
        for (i, rating) in [5u8, 4].into_iter().enumerate() {
            let id = format!("rev_01j0000000000000000000000{i}");
            let review = fixture_review(
                &id,
                FIRST_PRODUCT_ID,
                &product.seller_id,
                &format!("u{i}"),
                rating,
                ReviewStatus::Approved,
            );
            deps.ratings.insert(review);
        }
        let body = body_json(&handle(&deps, get(FIRST_PRODUCT_ID)).await.unwrap());
        let availability: Vec<&str> =
            body["variants"].as_array().unwrap().iter().map(|v| v["availability"].as_str().unwrap()).collect();
        assert_eq!(availability[..3], ["in_stock", "low_stock", "out_of_stock"]);
        assert_eq!(
            body["rating"],
            serde_json::json!({"average": 4.5, "count": 2, "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}})
        );
        assert!(!body.to_string().contains("on_hand") && !body.to_string().contains("\"available\""));
    }

    #[tokio::test]
    async fn when_the_etag_is_current_should_304_and_when_the_price_changes_should_tag_anew() {
        let deps = demo();
        let store = &deps.catalog;
        let first = handle(&deps, get(FIRST_PRODUCT_ID)).await.unwrap();
        assert_eq!(first.headers()["cache-control"], api::PUBLIC_CACHE);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();

        let conditional = || {
            request("GET", "/v1/products/{product_id}", &format!("/v1/products/{FIRST_PRODUCT_ID}"))
                .path_param("product_id", FIRST_PRODUCT_ID)
                .header("if-none-match", &etag)
                .build()
        };
        let second = handle(&deps, conditional()).await.unwrap();
        assert_eq!(second.status(), 304);
        assert!(matches!(second.body(), Body::Empty));
        assert_eq!(second.headers()["etag"], etag.as_str());

        let current = store.stored(FIRST_PRODUCT_ID).unwrap();
        let mut repriced = current.clone();
        repriced.variants[0].price.amount += 100;
        repriced.version += 1;
        store.replace_product(&current, &repriced).await.unwrap();
        let after = handle(&deps, conditional()).await.unwrap();
        assert_eq!(after.status(), 200);
        assert_ne!(after.headers()["etag"], etag.as_str());
        assert_eq!(body_json(&after)["variants"][0]["price"]["amount"], repriced.variants[0].price.amount);
    }

    #[tokio::test]
    async fn when_product_is_unknown_should_404_uncached() {
        let response = handle(&demo(), get("prd_01hzzzzzzzzzzzzzzzzzzzzzzz")).await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(body_json(&response)["error"]["code"], "not_found");
        assert_eq!(response.headers()["cache-control"], api::NO_STORE);
    }

    #[tokio::test]
    async fn when_id_is_junk_should_404_without_reading() {
        let response = handle(&demo(), get("../../etc/passwd")).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_product_is_draft_should_404() {
        let deps = demo();
        let current = deps.catalog.stored(FIRST_PRODUCT_ID).unwrap();
        let mut draft = current.clone();
        draft.status = commerce_domain::catalog::ProductStatus::Draft;
        draft.version += 1;
        deps.catalog.replace_product(&current, &draft).await.unwrap();
        assert_eq!(handle(&deps, get(FIRST_PRODUCT_ID)).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-product").as_ref()) {
            let response = handle(&demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
