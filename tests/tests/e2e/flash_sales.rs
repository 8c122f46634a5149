//! The flash-sale race through the real local stack (the benchmark's race at a smaller size, same
//! invariants), then winners paying through the normal checkout: one pays, one is declined (the unit goes
//! back to the sale), one lets the hold expire before paying (the unit goes back, checkout answers 410), and
//! the one who paid cancels before shipment (the unit goes back to the live sale, once).

use crate::checkout::{aws, checkout, checkout_body, settled};
use crate::inventory::{assert_invariant, call, token};
use aws_sdk_dynamodb::types::AttributeValue;
use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_domain::flash_sale::check_sale;
use flash_bench::{run, Race, Stack};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use system_tests::{stack, target_dir, unique};

const FLASH_TABLE: &str = "commerce-local-FlashSalesTable";
const INVENTORY_TABLE: &str = "commerce-local-InventoryTable";
/// Buyers and units of the race, sized for a two-core machine running the rest of the suite at the same time:
/// 1,000 buyers for 100 units took 32 s of racing plus 53 s signing the buyers in (about 2.5 minutes for this
/// test alone); every buyer gets a final answer and the invariants are the benchmark's.
const BUYERS: usize = 1_000;
const UNITS: u32 = 100;

fn flash_checkout(ticket_id: &str, method: &str) -> Value {
    let mut body = checkout_body("", method);
    body["flash_ticket_id"] = json!(ticket_id);
    body.as_object_mut().map(|b| b.remove("cart_id"));
    body
}

async fn entry(user: &str, sale_id: &str, ticket_id: &str) -> Value {
    let path = format!("/v1/flash-sales/{sale_id}/entries/{ticket_id}");
    let (status, body) = call(Method::GET, &path, Some(&token(user)), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn in_shards(store: &DynamoFlashSales, sale_id: &str) -> (i64, bool) {
    let snapshot = store.snapshot(sale_id).await.expect("snapshot").expect("sale stored");
    let violations = check_sale(&snapshot);
    assert!(violations.is_empty(), "{violations:?}");
    (snapshot.totals().in_shards, snapshot.gate.sold_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shoppers_race_for_a_flash_sale_and_winners_pay_through_checkout() {
    let _heavy = system_tests::heavy_scenario().await;
    let s = stack();
    let bench = Stack {
        api: s.api.clone(),
        aws: s.aws.clone(),
        local_stack: target_dir().join("debug").join("local-stack"),
        state_dir: s.state_dir.clone(),
        flash_table: FLASH_TABLE.into(),
        inventory_table: INVENTORY_TABLE.into(),
    };
    let race = Race {
        buyers: BUYERS,
        units: UNITS,
        shards: 4,
        first_shopper: 500_000,
        concurrency: 100,
        product_id: "prd_demo-0221".into(),
    };
    if let Err(err) = flash_bench::wait_for_seed_indexed(&bench).await {
        println!("flash race: starting anyway: {err}");
    }
    let began = Instant::now();
    let report = run(&bench, &race).await.expect("the race runs");
    println!(
        "flash race: {} buyers, {} units in {:.1} s (tokens {:.1} s, race {:.1} s): won {} sold out {} (at the door {}), p50 {} ms p99 {} ms, late entry {} in {} ms",
        report.buyers,
        report.units,
        began.elapsed().as_secs_f64(),
        report.token_mint_s,
        report.race_s,
        report.won,
        report.sold_out,
        report.rejected_at_door,
        report.p50_ms,
        report.p99_ms,
        report.late_entry_status,
        report.late_entry_ms
    );
    assert_eq!(report.failures(), Vec::<String>::new());
    assert_eq!((report.won, report.oversold, report.stranded, report.no_final_answer), (UNITS as usize, 0, 0, 0));
    assert_eq!(report.late_entry_status, 410, "an entry after sell-out is refused at the door");
    assert_eq!(report.tickets_stored, BUYERS - report.rejected_at_door, "nothing stored or enqueued at the door");
    assert_eq!(report.winners.len(), UNITS as usize);
    let mut users: Vec<&str> = report.winners.iter().map(|w| w.user.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users.len(), UNITS as usize, "one unit per customer");
    assert_invariant(std::slice::from_ref(&report.sku)).await;

    let store = DynamoFlashSales::new(aws_sdk_dynamodb::Client::new(&aws().await), FLASH_TABLE, INVENTORY_TABLE);
    let sale_id = report.sale_id.as_str();
    assert_eq!(in_shards(&store, sale_id).await, (0, true));
    let (paid, declined, late) = (&report.winners[0], &report.winners[1], &report.winners[2]);

    // A winner pays the sale's price, not the catalog's; a replay of the same checkout is the same order.
    let key = unique("flash");
    let (status, _, accepted) =
        checkout(&token(&paid.user), &key, &flash_checkout(&paid.ticket_id, "pm_card_visa")).await;
    assert_eq!(status, 202, "{accepted}");
    let paid_order = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order = settled(&token(&paid.user), &paid_order, Duration::from_secs(60)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total"], json!({"amount": 100, "currency": "USD"}), "{order}");
    assert_eq!(order["lines"][0]["sku"], report.sku.as_str());
    assert_eq!(entry(&paid.user, sale_id, &paid.ticket_id).await["status"], "won");
    let (status, _, again) =
        checkout(&token(&paid.user), &unique("flash"), &flash_checkout(&paid.ticket_id, "pm_card_visa")).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("hold_consumed")), "{again}");

    // Someone else's ticket does not exist for the caller; a guest cannot use one.
    let (status, _, body) =
        checkout(&token(&late.user), &unique("flash"), &flash_checkout(&declined.ticket_id, "pm_card_visa")).await;
    assert_eq!(status, 404, "{body}");

    // A declined winner's unit goes back to the sale and the gate reopens for the next in line.
    let (status, _, accepted) = checkout(
        &token(&declined.user),
        &unique("flash"),
        &flash_checkout(&declined.ticket_id, "pm_card_visa_chargeDeclined"),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order = settled(&token(&declined.user), &order_id, Duration::from_secs(60)).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("payment_declined")),
        "{order}"
    );
    assert_eq!(entry(&declined.user, sale_id, &declined.ticket_id).await["status"], "expired");
    assert_eq!(in_shards(&store, sale_id).await, (1, false));

    // A winner whose hold ran out before paying: checkout answers 410 and the unit goes back.
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    aws_sdk_dynamodb::Client::new(&aws().await)
        .update_item()
        .table_name(FLASH_TABLE)
        .key("pk", AttributeValue::S(format!("TICKET#{}", late.ticket_id)))
        .key("sk", AttributeValue::S("TICKET".into()))
        .update_expression("SET hold_expires_at = :at, hold_expires_ms = :ms")
        .expression_attribute_values(":at", AttributeValue::S(past.to_rfc3339()))
        .expression_attribute_values(":ms", AttributeValue::N(past.timestamp_millis().to_string()))
        .send()
        .await
        .expect("expire the hold");
    let (status, _, body) =
        checkout(&token(&late.user), &unique("flash"), &flash_checkout(&late.ticket_id, "pm_card_visa")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (410, Some("hold_expired")), "{body}");
    assert_eq!(entry(&late.user, sale_id, &late.ticket_id).await["status"], "expired");
    assert_eq!(in_shards(&store, sale_id).await, (2, false));

    // The winner who paid cancels before shipment: the order is cancelled, its unit goes back to the live sale
    // (not to the warehouse's stock, which never held it), and a repeated cancel returns nothing more.
    let shopper = token(&paid.user);
    let cancel = format!("/v1/orders/{paid_order}/cancel");
    let (status, _) = call(Method::POST, &cancel, Some(&token(&declined.user)), None).await;
    assert_eq!(status, 404, "only the owner may cancel");
    let (status, order) = call(Method::POST, &cancel, Some(&shopper), None).await;
    assert_eq!((status, order["status"].as_str()), (200, Some("cancelled")), "{order}");
    assert_eq!(in_shards(&store, sale_id).await, (3, false));
    assert_eq!(entry(&paid.user, sale_id, &paid.ticket_id).await["status"], "expired");
    let (status, again) = call(Method::POST, &cancel, Some(&shopper), None).await;
    assert_eq!(status, 200, "a repeated cancel answers the cancelled order: {again}");
    assert_eq!(in_shards(&store, sale_id).await, (3, false), "the unit came back once");

    assert_invariant(std::slice::from_ref(&report.sku)).await;
}
