//! Reads (and settles) the caller's entry.

use commerce_app::ports::{FlashSaleReader, FlashTicketStore};
use commerce_app::services::flash_sale;
use commerce_domain::ids::{SaleId, TicketId};
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    sales: &(impl FlashSaleReader + FlashTicketStore),
    gates: &flash_sale::OpenGates,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let sale_id: SaleId = api::path(&req, "sale_id")?;
        let ticket_id: TicketId = api::path(&req, "ticket_id")?;
        flash_sale::get_entry(sales, sales, gates, &caller, &sale_id, &ticket_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use commerce_app::ports::FlashEntryWriter;
    use commerce_domain::flash_sale::{NewFlashSale, Ticket};
    use commerce_domain::money::{Currency, Money};
    use commerce_testkit::flash_sale::InMemoryFlashSales;
    use commerce_testkit::http::{body_json, request, sample_events};

    fn gates() -> flash_sale::OpenGates {
        flash_sale::OpenGates::new(Duration::seconds(1))
    }

    async fn store() -> InMemoryFlashSales {
        let now = Utc::now();
        let sale = NewFlashSale {
            sku: "SKU-1".into(),
            units: 10,
            price: Money::new(100, Currency::USD),
            starts_at: now - Duration::minutes(1),
            ends_at: now + Duration::hours(1),
            per_customer_limit: 1,
            shards: None,
            lanes: None,
            hold_seconds: None,
            warehouse_id: None,
        }
        .into_sale("fs_live".into(), "seller".into(), "wh_east".into(), now, 160);
        let store = InMemoryFlashSales::default().with_sale(sale);
        let ticket = Ticket::waiting("ftk_alice1".into(), "fs_live".into(), "alice".into(), 3, now);
        store.create_ticket(&ticket, 1, Duration::zero()).await.unwrap();
        store
    }

    fn get(user: &str, ticket: &str) -> Request {
        let path = format!("/v1/flash-sales/fs_live/entries/{ticket}");
        request("GET", "/v1/flash-sales/{sale_id}/entries/{ticket_id}", &path)
            .path_param("sale_id", "fs_live")
            .path_param("ticket_id", ticket)
            .caller(user, "shoppers")
            .build()
    }

    #[tokio::test]
    async fn an_instance_trusts_an_open_gate_it_read_for_the_interval_and_reads_a_closed_one_again() {
        let store = store().await;
        let instance = gates();
        let body = body_json(&handle(&store, &instance, get("alice", "ftk_alice1")).await.unwrap());
        assert_eq!(body["status"], "waiting");
        store.close("fs_live");
        // Within the interval the same instance answers from its open read; nothing is settled meanwhile.
        let body = body_json(&handle(&store, &instance, get("alice", "ftk_alice1")).await.unwrap());
        assert_eq!(body["status"], "waiting");
        let untrusting = flash_sale::OpenGates::new(Duration::zero());
        let body = body_json(&handle(&store, &untrusting, get("alice", "ftk_alice1")).await.unwrap());
        assert_eq!(body["status"], "sold_out");
        // Once closed, the ticket is settled: every instance answers sold out.
        let body = body_json(&handle(&store, &instance, get("alice", "ftk_alice1")).await.unwrap());
        assert_eq!(body["status"], "sold_out");
    }

    #[tokio::test]
    async fn when_waiting_should_show_position_then_sold_out_once_the_gate_closes() {
        let store = store().await;
        let body = body_json(&handle(&store, &gates(), get("alice", "ftk_alice1")).await.unwrap());
        assert_eq!((body["status"].as_str(), body["position"].as_u64()), (Some("waiting"), Some(3)));
        store.close("fs_live");
        let body = body_json(&handle(&store, &gates(), get("alice", "ftk_alice1")).await.unwrap());
        assert_eq!(body["status"], "sold_out");
        assert!(body.get("position").is_none());
    }

    #[tokio::test]
    async fn when_another_shopper_asks_should_404() {
        let store = store().await;
        assert_eq!(handle(&store, &gates(), get("mallory", "ftk_alice1")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-flash-sale-entry").as_ref()) {
            let response = handle(&store().await, &gates(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
