//! The DynamoDB catalog adapter and services over the real wire protocol, against the local AWS endpoint in
//! `LOCAL_AWS_ENDPOINT` (the emulator). Each test creates its own table. Without the variable the tests
//! print why and pass without running.

use aws_sdk_dynamodb::types::ProjectionType;
use commerce_app::ports::{CategoryListing, ProductReader, ProductUpdater, SellerProducts, SkuCatalog};
use commerce_app::services::catalog as service;
use commerce_aws::catalog::DynamoCatalog;
use commerce_demo::catalog as demo;
use commerce_domain::auth::{Caller, Role};
use commerce_domain::catalog::{CategoryQuery, ListSort, PageLimit, ProductInput, ProductPatch};
use commerce_domain::error::DomainError;
use commerce_domain::error::ErrorCode;
use commerce_domain::ids::ProductId;
use commerce_testkit::dynamo::{create_table, local_client, local_endpoint, unique_name};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

async fn table() -> Option<DynamoCatalog> {
    let client = local_client(&local_endpoint()?).await;
    let name = unique_name("catalog-test");
    let all = ProjectionType::All;
    create_table(&client, &name, &[("gsi1", all.clone()), ("gsi2", all.clone()), ("gsi3", all)]).await;
    Some(DynamoCatalog::new(client, name))
}

fn seller(id: &str) -> Caller {
    Caller { user_id: id.into(), email: None, roles: vec![Role::Seller] }
}

fn input(skus: &[&str]) -> ProductInput {
    serde_json::from_value(json!({
        "title": "Wire tee", "category_id": "cat_tshirts", "attributes": {"fit": "slim", "fabric": "cotton"},
        "variants": skus.iter().enumerate().map(|(i, sku)| json!({
            "sku": sku, "options": {"size": i.to_string()}, "price": {"amount": 1000 + i as i64, "currency": "USD"}
        })).collect::<Vec<_>>()
    }))
    .unwrap()
}

/// The demo categories and its first `products` products, for tests where table size only costs time.
async fn with_some(catalog: &DynamoCatalog, products: usize) {
    let (categories, all) = demo::catalog(&["seller-a".to_string(), "seller-b".to_string()]).unwrap();
    catalog.import(&categories, &all[..products]).await.unwrap();
}

async fn with_demo(catalog: &DynamoCatalog) -> usize {
    let started = Instant::now();
    let count = demo::seed(catalog, &["seller-a".to_string(), "seller-b".to_string()]).await.unwrap();
    println!("demo catalog: {count} products seeded in {:?}", started.elapsed());
    count
}

#[tokio::test]
async fn create_get_update_delete_keep_skus_and_listings_consistent() {
    let Some(catalog) = table().await else { return };
    with_some(&catalog, 30).await;
    let owner = seller("seller-x");

    let created = service::create_product(&catalog, &catalog, &catalog, &owner, input(&["W-1", "W-2"])).await.unwrap();
    let read = catalog.get_product(&created.product_id).await.unwrap().unwrap();
    assert_eq!(read, created);
    let views = catalog.variants_by_sku(&["W-2".into(), "NOPE".into(), "W-1".into()]).await.unwrap();
    assert_eq!(views.iter().map(|v| v.sku.as_str()).collect::<Vec<_>>(), vec!["W-2", "W-1"]);
    assert_eq!(views[0].seller_id, "seller-x");
    assert_eq!(views[0].price.amount, 1001);

    let taken =
        service::create_product(&catalog, &catalog, &catalog, &seller("seller-y"), input(&["W-3", "W-1"])).await;
    assert!(matches!(taken, Err(DomainError::Conflict { code: ErrorCode::SkuTaken, .. })), "{taken:?}");
    assert!(catalog.variants_by_sku(&["W-3".into()]).await.unwrap().is_empty(), "a cancelled create writes nothing");

    let patch: ProductPatch = serde_json::from_value(json!({
        "variants": [{"sku": "W-2", "price": {"amount": 500, "currency": "USD"}}, {"sku": "W-4", "options": {"size": "9"}, "price": {"amount": 700, "currency": "USD"}}]
    }))
    .unwrap();
    let updated =
        service::update_product(&catalog, &owner, &ProductId::parse(&created.product_id).unwrap(), patch, Some(1))
            .await
            .unwrap();
    assert_eq!(updated.version, 2);
    let skus = catalog.variants_by_sku(&["W-1".into(), "W-2".into(), "W-4".into()]).await.unwrap();
    assert_eq!(skus.iter().map(|v| v.sku.as_str()).collect::<Vec<_>>(), vec!["W-2", "W-4"], "W-1 was released");
    assert_eq!(skus[0].price.amount, 500);

    let listed = catalog
        .list_category(&CategoryQuery {
            category_id: "cat_clothing".into(),
            sort: ListSort::PriceAsc,
            limit: PageLimit::new(1).unwrap(),
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.items[0].product_id, created.product_id, "cheapest clothing, listed under the parent too");
    assert_eq!(listed.items[0].price_min.amount, 500);

    let archive: ProductPatch = serde_json::from_value(json!({"status": "archived"})).unwrap();
    service::update_product(&catalog, &owner, &ProductId::parse(&created.product_id).unwrap(), archive, None)
        .await
        .unwrap();
    let listed = catalog
        .list_category(&CategoryQuery {
            category_id: "cat_clothing".into(),
            sort: ListSort::PriceAsc,
            limit: PageLimit::new(1).unwrap(),
            cursor: None,
        })
        .await
        .unwrap();
    assert_ne!(listed.items[0].product_id, created.product_id, "archived products leave public listings");
    let mine = catalog.list_seller("seller-x", PageLimit::default(), None).await.unwrap();
    assert_eq!(mine.items.len(), 1, "sellers still see archived products");

    let other = service::delete_product(
        &catalog,
        &catalog,
        &seller("seller-y"),
        &ProductId::parse(&created.product_id).unwrap(),
    )
    .await;
    assert!(matches!(other, Err(DomainError::Forbidden(_))));
    service::delete_product(&catalog, &catalog, &owner, &ProductId::parse(&created.product_id).unwrap()).await.unwrap();
    assert!(catalog.get_product(&created.product_id).await.unwrap().is_none());
    assert!(catalog.variants_by_sku(&["W-2".into(), "W-4".into()]).await.unwrap().is_empty());
    let other = service::create_product(&catalog, &catalog, &catalog, &seller("seller-y"), input(&["W-2"])).await;
    assert!(matches!(other, Err(DomainError::Conflict { code: ErrorCode::SkuTaken, .. })), "{other:?}");
    let reuse = service::create_product(&catalog, &catalog, &catalog, &owner, input(&["W-2"])).await;
    assert!(reuse.is_ok(), "a deleted product's SKUs stay its seller's: {reuse:?}");
}

/// Two sellers create a product with the same SKU at once, `rounds` times with fresh SKUs: `(x wins, y wins)`.
async fn race_for_fresh_skus(catalog: &Arc<DynamoCatalog>, tag: &str, rounds: usize) -> (usize, usize) {
    let mut wins = (0, 0);
    for round in 0..rounds {
        let sku = format!("RACE-{tag}-{round}");
        let [x, y] = [seller("seller-x"), seller("seller-y")].map(|caller| {
            let (catalog, sku) = (catalog.clone(), sku.clone());
            tokio::spawn(async move {
                service::create_product(&*catalog, &*catalog, &*catalog, &caller, input(&[sku.as_str()])).await
            })
        });
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        match (&x, &y) {
            (Ok(_), Err(DomainError::Conflict { code: ErrorCode::SkuTaken, .. })) => wins.0 += 1,
            (Err(DomainError::Conflict { code: ErrorCode::SkuTaken, .. }), Ok(_)) => wins.1 += 1,
            _ => panic!("exactly one seller gets {sku}: {x:?} / {y:?}"),
        }
        let owner = catalog.variants_by_sku(std::slice::from_ref(&sku)).await.unwrap().remove(0).seller_id;
        assert_eq!(owner, if x.is_ok() { "seller-x" } else { "seller-y" });
    }
    wins
}

#[tokio::test]
async fn two_sellers_racing_for_a_sku_one_wins_and_a_deleted_sku_stays_its_sellers() {
    let Some(catalog) = table().await else { return };
    with_some(&catalog, 1).await;
    let catalog = Arc::new(catalog);
    let (x, y) = race_for_fresh_skus(&catalog, "FRESH", 6).await;
    println!("fresh SKUs: seller-x won {x}, seller-y won {y}");

    // seller-x's product is deleted; both sellers then race for its SKU, again and again: only seller-x wins.
    let sku = "RACE-DELETED";
    let first = service::create_product(&*catalog, &*catalog, &*catalog, &seller("seller-x"), input(&[sku])).await;
    let mut product_id = first.unwrap().product_id;
    for round in 0..4 {
        service::delete_product(&*catalog, &*catalog, &seller("seller-x"), &ProductId::parse(&product_id).unwrap())
            .await
            .unwrap();
        let [x, y] = [seller("seller-x"), seller("seller-y")].map(|caller| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                service::create_product(&*catalog, &*catalog, &*catalog, &caller, input(&[sku])).await
            })
        });
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        assert!(matches!(y, Err(DomainError::Conflict { code: ErrorCode::SkuTaken, .. })), "round {round}: {y:?}");
        product_id = x.unwrap_or_else(|e| panic!("round {round}: the SKU's seller gets it back: {e:?}")).product_id;
    }
}

#[tokio::test]
async fn concurrent_read_modify_writes_lose_nothing() {
    let Some(catalog) = table().await else { return };
    with_some(&catalog, 1).await;
    let catalog = Arc::new(catalog);
    let id = demo::FIRST_PRODUCT_ID;
    let writers = 8;
    let per_writer = 2;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let catalog = catalog.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for n in 0..per_writer {
                loop {
                    let current = catalog.get_product(id).await.unwrap().unwrap();
                    let mut next = current.clone();
                    next.images.push(format!("https://images.example.com/w{w}-{n}.jpg"));
                    next.version += 1;
                    match catalog.replace_product(&current, &next).await {
                        Ok(()) => break,
                        Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }) => conflicts += 1,
                        Err(other) => panic!("{other:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let last = catalog.get_product(id).await.unwrap().unwrap();
    let appended = last.images.iter().filter(|i| i.contains("/w")).count();
    println!("{writers} writers x {per_writer} appends: {conflicts} version conflicts retried, {appended} appended");
    assert_eq!(appended, writers * per_writer, "every acknowledged append survived");
    assert_eq!(last.version, 1 + (writers * per_writer) as u64);
}

#[tokio::test]
async fn concurrent_patches_through_the_service_each_get_their_own_version() {
    let Some(catalog) = table().await else { return };
    with_some(&catalog, 1).await;
    let catalog = Arc::new(catalog);
    let id = demo::FIRST_PRODUCT_ID;
    let owner = seller("seller-a");
    let mut tasks = Vec::new();
    for w in 0..10 {
        let (catalog, owner) = (catalog.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            let patch = ProductPatch { description: Some(format!("writer {w}")), ..Default::default() };
            service::update_product(&*catalog, &owner, &ProductId::parse(id).unwrap(), patch, None).await
        }));
    }
    let mut versions = BTreeSet::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(product) => assert!(versions.insert(product.version), "two writers got version {}", product.version),
            Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }) => conflicts += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let last = catalog.get_product(id).await.unwrap().unwrap();
    println!("10 concurrent PATCHes: {} applied, {conflicts} answered 409 after retries", versions.len());
    assert_eq!(last.version, 1 + versions.len() as u64, "every applied PATCH is one version");
    assert_eq!(versions.last().copied(), Some(last.version));
}

#[tokio::test]
async fn category_listing_paginates_with_cursors_and_rejects_tampering() {
    let Some(catalog) = table().await else { return };
    with_demo(&catalog).await;
    for (sort, ascending) in [(ListSort::Newest, false), (ListSort::PriceAsc, true), (ListSort::PriceDesc, false)] {
        let mut cursor = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let query = CategoryQuery {
                category_id: "cat_electronics".into(),
                sort,
                limit: PageLimit::new(7).unwrap(),
                cursor: cursor.clone(),
            };
            let page = catalog.list_category(&query).await.unwrap();
            pages += 1;
            seen.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let ids: BTreeSet<&str> = seen.iter().map(|s| s.product_id.as_str()).collect();
        assert_eq!((seen.len(), ids.len()), (90, 90), "{sort:?}: every electronics product once, in {pages} pages");
        let keys: Vec<String> = seen
            .iter()
            .map(|s| match sort {
                ListSort::Newest => s.created_at.to_rfc3339(),
                _ => format!("{:012}", s.price_min.amount),
            })
            .collect();
        let ordered = keys.windows(2).all(|w| if ascending { w[0] <= w[1] } else { w[0] >= w[1] });
        assert!(ordered, "{sort:?} order");
    }

    let first = catalog
        .list_category(&CategoryQuery {
            category_id: "cat_books".into(),
            sort: ListSort::Newest,
            limit: PageLimit::new(2).unwrap(),
            cursor: None,
        })
        .await
        .unwrap();
    let cursor = first.next_cursor.unwrap();
    let elsewhere = CategoryQuery {
        category_id: "cat_home".into(),
        sort: ListSort::Newest,
        limit: PageLimit::default(),
        cursor: Some(cursor.clone()),
    };
    assert!(
        matches!(catalog.list_category(&elsewhere).await, Err(DomainError::InvalidParameter { ref field, .. }) if field == "cursor")
    );
    let garbage = CategoryQuery { cursor: Some(format!("x{cursor}")), category_id: "cat_books".into(), ..elsewhere };
    assert!(matches!(catalog.list_category(&garbage).await, Err(DomainError::InvalidParameter { .. })));

    let by_b = catalog.list_seller("seller-b", PageLimit::new(100).unwrap(), None).await.unwrap();
    assert_eq!(by_b.items.len(), 75);

    let started = Instant::now();
    service::create_product(&catalog, &catalog, &catalog, &seller("seller-z"), input(&["T-1", "T-2"])).await.unwrap();
    println!("one product create (a 5-action transaction) with the demo catalog loaded: {:?}", started.elapsed());
}

#[tokio::test]
async fn categories_are_created_renamed_and_deleted_only_when_empty() {
    let Some(catalog) = table().await else { return };
    with_some(&catalog, 10).await;
    let admin = Caller { user_id: "admin".into(), email: None, roles: vec![Role::Admin] };
    let tablets = service::create_category(
        &catalog,
        &catalog,
        &admin,
        serde_json::from_value(json!({"name": "Tablets", "parent_id": "cat_electronics"})).unwrap(),
    )
    .await
    .unwrap();
    let renamed = service::update_category(
        &catalog,
        &catalog,
        &admin,
        &tablets.category_id,
        serde_json::from_value(json!({"name": "Tablets & e-readers"})).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(renamed.version, 2);
    let all = service::list_categories(&catalog).await.unwrap();
    assert!(all.iter().any(|c| c.name == "Tablets & e-readers" && c.path.len() == 2));

    let busy = service::delete_category(&catalog, &catalog, &catalog, &admin, "cat_laptops").await;
    assert!(matches!(busy, Err(DomainError::Conflict { code: ErrorCode::CategoryNotEmpty, .. })));
    service::delete_category(&catalog, &catalog, &catalog, &admin, &tablets.category_id).await.unwrap();
    service::delete_category(&catalog, &catalog, &catalog, &admin, demo::EMPTY_CATEGORY_ID).await.unwrap();
    assert_eq!(service::list_categories(&catalog).await.unwrap().len(), all.len() - 2);
}
