//! Parses the entry (sale, caller, Idempotency-Key), enters, answers 202 with the ticket and position.

use commerce_app::ports::{FlashEntryWriter, FlashSaleReader, WaitingRoom};
use commerce_app::services::flash_sale::{self, EntryCache, EntryPolicy};
use commerce_domain::ids::SaleId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

/// What the handler needs, built once in `main`.
pub struct Deps<'a, S, Q> {
    pub sales: &'a S,
    pub queue: &'a Q,
    pub cache: &'a EntryCache,
    pub policy: EntryPolicy,
}

pub async fn handle<S, Q>(deps: &Deps<'_, S, Q>, req: Request) -> Result<Response<Body>, Error>
where
    S: FlashSaleReader + FlashEntryWriter,
    Q: WaitingRoom,
{
    let result = async {
        let caller = auth::caller(&req)?;
        let sale_id: SaleId = api::path(&req, "sale_id")?;
        let key = api::header(&req, "idempotency-key");
        let now = chrono::Utc::now();
        let entrance =
            flash_sale::Entrance { sales: deps.sales, cache: deps.cache, queue: deps.queue, policy: deps.policy };
        flash_sale::enter(&entrance, &caller, &sale_id, key.as_deref(), now).await
    }
    .await;
    Ok(api::respond(api::StatusCode::ACCEPTED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use commerce_domain::flash_sale::NewFlashSale;
    use commerce_domain::money::{Currency, Money};
    use commerce_testkit::flash_sale::InMemoryFlashSales;
    use commerce_testkit::http::{body_json, request, sample_events};

    fn sale(id: &str, starts_in: Duration, limit: u32) -> commerce_domain::flash_sale::FlashSale {
        let now = Utc::now();
        NewFlashSale {
            sku: "SKU-1".into(),
            units: 10,
            price: Money::new(100, Currency::USD),
            starts_at: now + starts_in,
            ends_at: now + Duration::hours(1),
            per_customer_limit: limit,
            shards: Some(2),
            lanes: None,
            hold_seconds: None,
            warehouse_id: None,
        }
        .into_sale(id.into(), "seller".into(), "wh_east".into(), now, 160)
    }

    fn store() -> InMemoryFlashSales {
        InMemoryFlashSales::default().with_sale(sale("fs_live", -Duration::minutes(1), 2)).with_sale(sale(
            "fs_soon",
            Duration::hours(1) - Duration::seconds(1),
            2,
        ))
    }

    fn enter(sale_id: &str, user: Option<&str>, key: Option<&str>) -> Request {
        let path = format!("/v1/flash-sales/{sale_id}/entries");
        let mut builder = request("POST", "/v1/flash-sales/{sale_id}/entries", &path).path_param("sale_id", sale_id);
        if let Some(user) = user {
            builder = builder.caller(user, "shoppers");
        }
        if let Some(key) = key {
            builder = builder.header("Idempotency-Key", key);
        }
        builder.build()
    }

    async fn run(store: &InMemoryFlashSales, min_interval_ms: i64, req: Request) -> Response<Body> {
        run_with(store, &EntryCache::new(Duration::seconds(1)), min_interval_ms, req).await
    }

    async fn run_with(
        store: &InMemoryFlashSales,
        cache: &EntryCache,
        min_interval_ms: i64,
        req: Request,
    ) -> Response<Body> {
        let deps = Deps {
            sales: store,
            queue: store,
            cache,
            policy: EntryPolicy { min_interval: Duration::milliseconds(min_interval_ms) },
        };
        handle(&deps, req).await.unwrap()
    }

    #[tokio::test]
    async fn when_live_should_202_with_ticket_and_position_and_enqueue() {
        let store = store();
        let response = run(&store, 0, enter("fs_live", Some("alice"), Some("k1"))).await;
        assert_eq!(response.status(), 202);
        let body = body_json(&response);
        assert!(body["ticket_id"].as_str().is_some_and(|t| t.starts_with("ftk_")));
        assert!(body["position"].as_u64().is_some_and(|p| p >= 1));
        assert_eq!(body["status"], "waiting");
        assert_eq!(store.queued().len(), 1);
    }

    #[tokio::test]
    async fn when_retried_with_same_key_should_answer_same_ticket_without_a_second_entry() {
        let store = store();
        let first = body_json(&run(&store, 0, enter("fs_live", Some("alice"), Some("k1"))).await);
        let second = body_json(&run(&store, 0, enter("fs_live", Some("alice"), Some("k1"))).await);
        assert_eq!(first["ticket_id"], second["ticket_id"]);
        assert_eq!(first["position"], second["position"]);
        assert_eq!(store.ticket_count(), 1);
    }

    #[tokio::test]
    async fn when_over_the_limit_should_409_and_when_too_fast_should_429_with_retry_after() {
        let store = store();
        for key in ["a", "b"] {
            assert_eq!(run(&store, 0, enter("fs_live", Some("bob"), Some(key))).await.status(), 202);
        }
        let third = run(&store, 0, enter("fs_live", Some("bob"), Some("c"))).await;
        assert_eq!(third.status(), 409);
        assert_eq!(body_json(&third)["error"]["code"], "per_customer_limit_reached");
        assert_eq!(run(&store, 60_000, enter("fs_live", Some("carol"), Some("a"))).await.status(), 202);
        let fast = run(&store, 60_000, enter("fs_live", Some("carol"), Some("b"))).await;
        assert_eq!(fast.status(), 429);
        assert_eq!(fast.headers()["retry-after"], "61");
    }

    #[tokio::test]
    async fn an_instance_reads_the_gate_once_per_interval_open_or_closed() {
        let store = store();
        let cache = EntryCache::new(Duration::minutes(10));
        assert_eq!(run_with(&store, &cache, 0, enter("fs_live", Some("erin"), Some("k"))).await.status(), 202);
        store.close("fs_live");
        // The instance trusts the open gate it read within the interval: the entry is queued (the worker turns
        // it away in line); a fresh instance reads the closed gate and answers 410 without a write.
        assert_eq!(run_with(&store, &cache, 0, enter("fs_live", Some("frank"), Some("k"))).await.status(), 202);
        assert_eq!(run(&store, 0, enter("fs_live", Some("grace"), Some("k"))).await.status(), 410);
        let expired = EntryCache::new(Duration::zero());
        assert_eq!(run_with(&store, &expired, 0, enter("fs_live", Some("heidi"), Some("k"))).await.status(), 410);
        assert_eq!(store.ticket_count(), 2);
    }

    #[tokio::test]
    async fn when_sold_out_should_410_and_enqueue_nothing() {
        let store = store();
        store.close("fs_live");
        let response = run(&store, 0, enter("fs_live", Some("dave"), Some("k"))).await;
        assert_eq!(response.status(), 410);
        assert_eq!(body_json(&response)["error"]["code"], "sold_out");
        assert!(store.queued().is_empty());
        assert_eq!(store.ticket_count(), 0);
    }

    #[tokio::test]
    async fn when_not_started_should_409_not_started_and_without_key_400() {
        let store = store();
        let early = run(&store, 0, enter("fs_soon", Some("erin"), Some("k"))).await;
        assert_eq!(early.status(), 409);
        assert_eq!(body_json(&early)["error"]["code"], "not_started");
        let no_key = run(&store, 0, enter("fs_live", Some("erin"), None)).await;
        assert_eq!(no_key.status(), 400);
        assert_eq!(body_json(&no_key)["error"]["field"], "Idempotency-Key");
        assert_eq!(run(&store, 0, enter("fs_live", None, Some("k"))).await.status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/enter-flash-sale").as_ref()) {
            let response = run(&store(), 0, event.request).await;
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
