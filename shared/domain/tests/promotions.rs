//! The promotions engine and rules: golden evaluations computed by hand (the working is in each case's
//! comments), the rules of a new and a patched promotion, code generation, and properties over random carts and
//! promotion sets.

use chrono::{DateTime, Duration, Utc};
use commerce_domain::money::{Currency, Money};
use commerce_domain::promotion::*;
use commerce_domain::DomainError;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------------------------
// Builders

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn now() -> DateTime<Utc> {
    at("2026-06-01T12:00:00Z")
}

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

fn percent(bp: u32) -> Option<PromotionValue> {
    Some(PromotionValue::Percent { percent_bp: bp })
}

fn fixed(amount: i64) -> Option<PromotionValue> {
    Some(PromotionValue::Fixed { amount: usd(amount) })
}

fn buy_get(buy: u32, get: u32) -> Option<PromotionValue> {
    Some(PromotionValue::BuyGet { buy, get })
}

const ALL: [DiscountClass; 3] = [DiscountClass::Product, DiscountClass::Order, DiscountClass::Shipping];

/// A platform promotion, started, without end or conditions, exclusive, priority 0.
fn promo(id: &str, kind: PromotionKind, value: Option<PromotionValue>) -> Promotion {
    Promotion {
        promotion_id: id.to_owned(),
        scope: Scope::Platform,
        name: format!("Promotion {id}"),
        code: None,
        kind,
        value,
        applies_to: AppliesTo::default(),
        conditions: Conditions::default(),
        starts_at: at("2026-01-01T00:00:00Z"),
        ends_at: None,
        usage_limit: None,
        per_customer_limit: None,
        combines_with: Vec::new(),
        priority: 0,
        restore_on_cancel: true,
        active: true,
        shards: MAX_SHARDS,
        version: 1,
        created_at: at("2026-01-01T00:00:00Z"),
        updated_at: at("2026-01-01T00:00:00Z"),
    }
}

fn skus(list: &[&str]) -> AppliesTo {
    AppliesTo { skus: list.iter().map(|s| s.to_string()).collect(), ..AppliesTo::default() }
}

fn seller(id: &str) -> Scope {
    Scope::Seller { seller_id: id.to_owned() }
}

fn auto(p: &Promotion) -> Candidate<'_> {
    Candidate { promotion: p, code: None, availability: Availability::default() }
}

fn coded<'a>(p: &'a Promotion, code: &str) -> Candidate<'a> {
    Candidate { promotion: p, code: Some(code.to_owned()), availability: Availability::default() }
}

fn line(sku: &str, seller_id: &str, quantity: u32, unit_price: i64) -> EvalLine {
    EvalLine {
        sku: sku.to_owned(),
        product_id: format!("prd_{sku}"),
        seller_id: seller_id.to_owned(),
        categories: vec!["root".to_owned()],
        quantity,
        unit_price,
        amount: unit_price * i64::from(quantity),
    }
}

fn ship(seller_id: &str, amount: i64) -> EvalShipping {
    EvalShipping { seller_id: seller_id.to_owned(), amount }
}

fn ctx() -> EvalContext {
    EvalContext {
        currency: Currency::USD,
        now: now(),
        shopper: Shopper { signed_in: true, first_order: false },
        shipping_known: true,
    }
}

fn share(id: &str, amount: i64) -> Share {
    Share { promotion_id: id.to_owned(), amount }
}

/// `(promotion id, amount)` of each applied promotion, in order.
fn applied(e: &Evaluation) -> Vec<(&str, i64)> {
    e.applied.iter().map(|a| (a.promotion_id.as_str(), a.amount)).collect()
}

/// `(promotion id, problem, reason)` of each problem, in order.
fn problems(e: &Evaluation) -> Vec<(&str, Problem, &str)> {
    e.problems.iter().map(|p| (p.promotion_id.as_str(), p.problem, p.reason.as_str())).collect()
}

/// The problem of one promotion evaluated alone on a one-line cart.
fn problem_alone(p: &Promotion, context: &EvalContext, availability: Availability) -> Vec<(String, Problem, String)> {
    let lines = [line("A", "s1", 1, 10_000)];
    let c = Candidate { promotion: p, code: None, availability };
    let e = evaluate(&lines, &[ship("s1", 500)], &[c], context);
    e.problems.into_iter().map(|p| (p.promotion_id, p.problem, p.reason)).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Golden evaluations

#[test]
fn a_product_percent_rounds_half_up_per_targeted_line() {
    // A: 1999 × 3 = 5997; 15 % = 899.55 → 900. B: 1005; 10 %... not targeted. C: 1005 × 10 % = 100.5 → 101.
    let mut p = promo("prm_a", PromotionKind::Percent, percent(1_500));
    p.applies_to = skus(&["A", "C"]);
    let mut q = promo("prm_c", PromotionKind::Percent, percent(1_000));
    q.applies_to = skus(&["C"]);
    let lines = [line("A", "s1", 3, 1_999), line("B", "s1", 1, 1_005), line("C", "s1", 1, 1_005)];
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    // C at 15 %: 150.75 → 151.
    assert_eq!(applied(&e), vec![("prm_a", 900 + 151)]);
    assert_eq!(e.lines, vec![vec![share("prm_a", 900)], vec![], vec![share("prm_a", 151)]]);
    assert_eq!(e.applied[0].class, DiscountClass::Product);
    let e = evaluate(&lines, &[], &[auto(&q)], &ctx());
    assert_eq!(e.lines[2], vec![share("prm_c", 101)], "100.5 rounds half up");
}

#[test]
fn a_product_fixed_amount_comes_off_each_unit_and_never_below_zero() {
    // $5 off each unit: A 1000 × 3 → 1500; B 300 × 2 = 600 < 1000 → 600 (not below zero).
    let mut p = promo("prm_f", PromotionKind::Fixed, fixed(500));
    p.applies_to = skus(&["A", "B"]);
    let lines = [line("A", "s1", 3, 1_000), line("B", "s1", 2, 300), line("C", "s1", 1, 9_999)];
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_f", 2_100)]);
    assert_eq!(e.lines, vec![vec![share("prm_f", 1_500)], vec![share("prm_f", 600)], vec![]]);
}

#[test]
fn an_order_discount_is_allocated_by_largest_remainder() {
    // 1000 + 2000 + 3001 = 6001; 10 % = 600.1 → 600. Exact shares: 99.98, 199.97, 300.05; floors 99, 199, 300
    // (598); remainders ×6001: 5901, 5801, 300 → the two units go to lines 0 and 1: 100, 200, 300.
    let p = promo("prm_o", PromotionKind::Percent, percent(1_000));
    let lines = [line("A", "s1", 1, 1_000), line("B", "s1", 1, 2_000), line("C", "s2", 1, 3_001)];
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_o", 600)]);
    assert_eq!(e.applied[0].class, DiscountClass::Order);
    assert_eq!(e.lines, vec![vec![share("prm_o", 100)], vec![share("prm_o", 200)], vec![share("prm_o", 300)]]);

    // $1 over three lines of $1: 33.33 each; the one unit left goes to the earliest of the equal remainders.
    let q = promo("prm_q", PromotionKind::Fixed, fixed(100));
    let lines = [line("A", "s1", 1, 100), line("B", "s1", 1, 100), line("C", "s1", 1, 100)];
    let e = evaluate(&lines, &[], &[auto(&q)], &ctx());
    assert_eq!(e.lines, vec![vec![share("prm_q", 34)], vec![share("prm_q", 33)], vec![share("prm_q", 33)]]);

    // A fixed order discount larger than the order takes the order and no more.
    let r = promo("prm_r", PromotionKind::Fixed, fixed(10_000));
    let e = evaluate(&lines, &[], &[auto(&r)], &ctx());
    assert_eq!(applied(&e), vec![("prm_r", 300)]);
}

#[test]
fn buy_two_get_one_frees_the_last_unit_of_each_group_of_three_by_price() {
    // Units by worth: 3000 (A), 2000, 2000 (B), 1000 (D), 500, 500, 500 (C). Groups of 3: [3000 2000 2000] frees a
    // 2000 of B; [1000 500 500] frees a 500 of C; the last 500 is not a full group.
    let p = promo("prm_b", PromotionKind::BuyXGetY, buy_get(2, 1));
    let lines =
        [line("A", "s1", 1, 3_000), line("B", "s1", 2, 2_000), line("C", "s1", 3, 500), line("D", "s1", 1, 1_000)];
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_b", 2_500)]);
    assert_eq!(e.lines, vec![vec![], vec![share("prm_b", 2_000)], vec![share("prm_b", 500)], vec![]]);
    assert_eq!(e.applied[0].class, DiscountClass::Product);

    // Equal worth: the earlier line comes first, so buy 1 get 1 frees the later line's unit.
    let q = promo("prm_q", PromotionKind::BuyXGetY, buy_get(1, 1));
    let lines = [line("A", "s1", 1, 700), line("B", "s1", 1, 700)];
    let e = evaluate(&lines, &[], &[auto(&q)], &ctx());
    assert_eq!(e.lines, vec![vec![], vec![share("prm_q", 700)]]);
}

#[test]
fn buy_get_counts_units_on_what_earlier_product_discounts_left() {
    // 335 × 3 = 1005; 10 % first (higher priority) = 100.5 → 101; left 904 = 302 + 301 + 301; buy 2 get 1 frees
    // a 301.
    let mut p = promo("prm_p", PromotionKind::Percent, percent(1_000));
    p.applies_to = skus(&["A"]);
    p.priority = 5;
    p.combines_with = vec![DiscountClass::Product];
    let mut b = promo("prm_b", PromotionKind::BuyXGetY, buy_get(2, 1));
    b.combines_with = vec![DiscountClass::Product];
    let lines = [line("A", "s1", 3, 335)];
    let e = evaluate(&lines, &[], &[auto(&b), auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_p", 101), ("prm_b", 301)]);
    assert_eq!(e.lines, vec![vec![share("prm_p", 101), share("prm_b", 301)]]);
}

#[test]
fn free_shipping_takes_the_shipping_of_the_parts_in_scope() {
    let lines = [line("A", "s1", 1, 1_000), line("B", "s2", 1, 2_000)];
    let shipping = [ship("s1", 499), ship("s2", 799), ship("s3", 999)];
    // The platform's: every part with a line (s3 has none).
    let p = promo("prm_s", PromotionKind::FreeShipping, None);
    let e = evaluate(&lines, &shipping, &[auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_s", 1_298)]);
    assert_eq!(e.applied[0].class, DiscountClass::Shipping);
    assert_eq!(e.shipping, vec![vec![share("prm_s", 499)], vec![share("prm_s", 799)], vec![]]);
    assert!(e.lines.iter().all(Vec::is_empty));
    // A seller's: only that seller's part.
    let mut q = promo("prm_q", PromotionKind::FreeShipping, None);
    q.scope = seller("s2");
    let e = evaluate(&lines, &shipping, &[auto(&q)], &ctx());
    assert_eq!(e.shipping, vec![vec![], vec![share("prm_q", 799)], vec![]]);
    // On some products: the parts holding them.
    let mut r = promo("prm_r", PromotionKind::FreeShipping, None);
    r.applies_to = skus(&["A"]);
    let e = evaluate(&lines, &shipping, &[auto(&r)], &ctx());
    assert_eq!(e.shipping, vec![vec![share("prm_r", 499)], vec![], vec![]]);
    // A part with nothing to pay for shipping: nothing to take.
    let e = evaluate(&lines, &[ship("s1", 0), ship("s2", 0)], &[auto(&p)], &ctx());
    assert_eq!(problems(&e), vec![("prm_s", Problem::NotApplicable, "no_discount")]);
    // No shipping entry for the seller of the targeted line.
    let e = evaluate(&lines, &[ship("s3", 999)], &[auto(&r)], &ctx());
    assert_eq!(problems(&e), vec![("prm_r", Problem::NotApplicable, "no_eligible_items")]);
}

#[test]
fn product_then_order_then_shipping_whatever_the_priorities() {
    // Product 10 % on A (priority 0): 1000. Order $30 (priority 9) on what is left, 9000 + 5000 = 14000: exact
    // shares 1928.57 and 1071.43, floors 1928 + 1071 = 2999, remainders ×14000: 8000 and 6000 → 1929 and 1071.
    // Free shipping (priority 5): 799.
    let mut product = promo("prm_p", PromotionKind::Percent, percent(1_000));
    product.applies_to = skus(&["A"]);
    product.combines_with = ALL.to_vec();
    let mut order = promo("prm_o", PromotionKind::Fixed, fixed(3_000));
    order.priority = 9;
    order.combines_with = ALL.to_vec();
    let mut shipping = promo("prm_s", PromotionKind::FreeShipping, None);
    shipping.priority = 5;
    shipping.combines_with = ALL.to_vec();
    let lines = [line("A", "s1", 1, 10_000), line("B", "s1", 1, 5_000)];
    let e = evaluate(&lines, &[ship("s1", 799)], &[auto(&shipping), auto(&order), auto(&product)], &ctx());
    assert_eq!(applied(&e), vec![("prm_p", 1_000), ("prm_o", 3_000), ("prm_s", 799)]);
    assert_eq!(e.lines, vec![vec![share("prm_p", 1_000), share("prm_o", 1_929)], vec![share("prm_o", 1_071)]]);
    assert_eq!(e.shipping, vec![vec![share("prm_s", 799)]]);
    assert_eq!(e.total(), 4_799);
    assert!(e.problems.is_empty());
}

#[test]
fn promotions_of_one_class_apply_in_priority_order_on_what_is_left() {
    // 50 % (priority 2) on 1000 → 500; then $4 off each unit (priority 1) on 500 → 400; then 50 % of 100 → 50
    // (priority 0, order class after both).
    let mut half = promo("prm_h", PromotionKind::Percent, percent(5_000));
    half.applies_to = skus(&["A"]);
    half.priority = 2;
    let mut off = promo("prm_f", PromotionKind::Fixed, fixed(400));
    off.applies_to = skus(&["A"]);
    off.priority = 1;
    let order = promo("prm_o", PromotionKind::Percent, percent(5_000));
    let (mut half, mut off, mut order) = (half, off, order);
    for p in [&mut half, &mut off, &mut order] {
        p.combines_with = vec![DiscountClass::Product, DiscountClass::Order];
    }
    let lines = [line("A", "s1", 1, 1_000)];
    let e = evaluate(&lines, &[], &[auto(&order), auto(&off), auto(&half)], &ctx());
    assert_eq!(applied(&e), vec![("prm_h", 500), ("prm_f", 400), ("prm_o", 50)]);
}

#[test]
fn a_sellers_promotion_never_touches_another_sellers_lines() {
    // s1's 20 % on its lines only: 1000 + 3000 = 4000 → 800, allocated 200 and 600; s2's line untouched.
    let mut p = promo("prm_s1", PromotionKind::Percent, percent(2_000));
    p.scope = seller("s1");
    let lines = [line("A", "s1", 1, 1_000), line("B", "s2", 1, 50_000), line("C", "s1", 1, 3_000)];
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_s1", 800)]);
    assert_eq!(e.lines, vec![vec![share("prm_s1", 200)], vec![], vec![share("prm_s1", 600)]]);
    // Even a buy-get with no target list, and even when the other seller's product is listed.
    let mut b = promo("prm_b", PromotionKind::BuyXGetY, buy_get(1, 1));
    b.scope = seller("s1");
    b.applies_to = skus(&["A", "B", "C"]);
    let e = evaluate(&lines, &[], &[auto(&b)], &ctx());
    assert_eq!(e.lines, vec![vec![share("prm_b", 1_000)], vec![], vec![]]);
    // A seller with no line in the cart: nothing eligible.
    let mut q = promo("prm_s3", PromotionKind::Percent, percent(2_000));
    q.scope = seller("s3");
    let e = evaluate(&lines, &[], &[auto(&q)], &ctx());
    assert_eq!(problems(&e), vec![("prm_s3", Problem::NotApplicable, "no_eligible_items")]);
}

#[test]
fn an_exclusive_promotion_is_never_combined() {
    let lines = [line("A", "s1", 1, 10_000)];
    let shipping = [ship("s1", 500)];
    // Exclusive 30 % order (3000) against product 10 % (1000) + free shipping (500), which combine: 3000 wins.
    let exclusive = promo("prm_x", PromotionKind::Percent, percent(3_000));
    let mut product = promo("prm_p", PromotionKind::Percent, percent(1_000));
    product.applies_to = skus(&["A"]);
    product.combines_with = ALL.to_vec();
    let mut free = promo("prm_s", PromotionKind::FreeShipping, None);
    free.combines_with = ALL.to_vec();
    let cands = [auto(&product), auto(&free), auto(&exclusive)];
    let e = evaluate(&lines, &shipping, &cands, &ctx());
    assert_eq!(applied(&e), vec![("prm_x", 3_000)]);
    assert_eq!(
        problems(&e),
        vec![("prm_p", Problem::NotApplicable, "not_combinable"), ("prm_s", Problem::NotApplicable, "not_combinable")]
    );
    // At 10 % the exclusive one (1000) loses to 1000 + 500.
    let exclusive = promo("prm_x", PromotionKind::Percent, percent(1_000));
    let cands = [auto(&product), auto(&free), auto(&exclusive)];
    let e = evaluate(&lines, &shipping, &cands, &ctx());
    assert_eq!(applied(&e), vec![("prm_p", 1_000), ("prm_s", 500)]);
    assert_eq!(problems(&e), vec![("prm_x", Problem::NotApplicable, "not_combinable")]);
    // Combining takes both sides: the product one lists shipping, the shipping one does not list product.
    free.combines_with = vec![DiscountClass::Order];
    let e = evaluate(&lines, &shipping, &[auto(&product), auto(&free)], &ctx());
    assert_eq!(applied(&e), vec![("prm_p", 1_000)]);
    assert_eq!(problems(&e), vec![("prm_s", Problem::NotApplicable, "not_combinable")]);
}

#[test]
fn ties_go_to_the_fewest_promotions_then_to_canonical_order() {
    let lines = [line("A", "s1", 1, 10_000), line("B", "s1", 1, 10_000)];
    // $10 exclusive vs $5 on A + $5 on B (combinable): 1000 each way; the single one wins.
    let single = promo("prm_z", PromotionKind::Fixed, fixed(1_000));
    let mut a = promo("prm_a", PromotionKind::Fixed, fixed(500));
    a.applies_to = skus(&["A"]);
    a.combines_with = vec![DiscountClass::Product];
    let mut b = promo("prm_b", PromotionKind::Fixed, fixed(500));
    b.applies_to = skus(&["B"]);
    b.combines_with = vec![DiscountClass::Product];
    let e = evaluate(&lines, &[], &[auto(&a), auto(&b), auto(&single)], &ctx());
    assert_eq!(applied(&e), vec![("prm_z", 1_000)]);
    // Two equal exclusive ones: the higher priority, then the smaller id.
    let mut one = promo("prm_2", PromotionKind::Percent, percent(1_000));
    let two = promo("prm_1", PromotionKind::Percent, percent(1_000));
    let e = evaluate(&lines, &[], &[auto(&one), auto(&two)], &ctx());
    assert_eq!(applied(&e), vec![("prm_1", 2_000)]);
    assert_eq!(problems(&e), vec![("prm_2", Problem::NotApplicable, "not_combinable")]);
    one.priority = 1;
    let e = evaluate(&lines, &[], &[auto(&two), auto(&one)], &ctx());
    assert_eq!(applied(&e), vec![("prm_2", 2_000)]);
    assert_eq!(problems(&e), vec![("prm_1", Problem::NotApplicable, "not_combinable")]);
}

#[test]
fn a_promotion_that_discounts_nothing_is_not_applied() {
    // 100 % off A first; 10 % off A then finds nothing left: the set {100 %} is the best, the 10 % one alone
    // would discount something, so it is reported as not combinable into the better set.
    let mut all = promo("prm_all", PromotionKind::Percent, percent(10_000));
    all.applies_to = skus(&["A"]);
    all.priority = 1;
    all.combines_with = vec![DiscountClass::Product];
    let mut ten = promo("prm_ten", PromotionKind::Percent, percent(1_000));
    ten.applies_to = skus(&["A"]);
    ten.combines_with = vec![DiscountClass::Product];
    let lines = [line("A", "s1", 1, 1_000)];
    let e = evaluate(&lines, &[], &[auto(&ten), auto(&all)], &ctx());
    assert_eq!(applied(&e), vec![("prm_all", 1_000)]);
    assert_eq!(problems(&e), vec![("prm_ten", Problem::NotApplicable, "not_combinable")]);
    // 1 bp of 10 minor units is 0.01 → 0: nothing, so not applied.
    let tiny = promo("prm_tiny", PromotionKind::Percent, percent(1));
    let e = evaluate(&[line("A", "s1", 1, 10)], &[], &[auto(&tiny)], &ctx());
    assert!(e.applied.is_empty());
    assert_eq!(problems(&e), vec![("prm_tiny", Problem::NotApplicable, "no_discount")]);
    assert_eq!(e.total(), 0);
}

#[test]
fn min_subtotal_counts_the_lines_in_scope_before_any_discount() {
    // s1's lines: 3000 + 2000 = 5000 (s2's 90000 does not count); applies_to is not used for the sum.
    let mut p = promo("prm_m", PromotionKind::Percent, percent(1_000));
    p.scope = seller("s1");
    p.applies_to = skus(&["A"]);
    p.conditions.min_subtotal = Some(usd(5_000));
    let lines = [line("A", "s1", 1, 3_000), line("B", "s1", 1, 2_000), line("C", "s2", 1, 90_000)];
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    assert_eq!(applied(&e), vec![("prm_m", 300)], "exactly the minimum is enough");
    p.conditions.min_subtotal = Some(usd(5_001));
    let e = evaluate(&lines, &[], &[auto(&p)], &ctx());
    assert_eq!(problems(&e), vec![("prm_m", Problem::NotApplicable, "min_subtotal")]);
    assert!(e.applied.is_empty());
}

#[test]
fn money_in_another_currency_does_not_apply() {
    let mut p =
        promo("prm_eur", PromotionKind::Fixed, Some(PromotionValue::Fixed { amount: Money::new(500, Currency::EUR) }));
    p.applies_to = skus(&["A"]);
    let expected = vec![("prm_eur".to_owned(), Problem::NotApplicable, "currency".to_owned())];
    assert_eq!(problem_alone(&p, &ctx(), Availability::default()), expected);
    let mut q = promo("prm_eur", PromotionKind::Percent, percent(1_000));
    q.conditions.min_subtotal = Some(Money::new(1, Currency::EUR));
    assert_eq!(problem_alone(&q, &ctx(), Availability::default()), expected);
}

#[test]
fn dates_switches_uses_and_the_shopper_are_checked() {
    let ok = promo("prm_1", PromotionKind::Percent, percent(1_000));
    let one = |problem, reason: &str| vec![("prm_1".to_owned(), problem, reason.to_owned())];
    let none = Availability::default();
    assert!(problem_alone(&ok, &ctx(), none).is_empty());

    let mut p = ok.clone();
    p.ends_at = Some(now());
    assert_eq!(problem_alone(&p, &ctx(), none), one(Problem::Expired, "ended"), "ends_at == now has ended");
    assert_eq!(p.unavailable_at(now() - Duration::seconds(1)), None);
    let mut p = ok.clone();
    p.starts_at = now() + Duration::seconds(1);
    assert_eq!(problem_alone(&p, &ctx(), none), one(Problem::Unavailable, "not_started"));
    let mut p = ok.clone();
    p.active = false;
    assert_eq!(problem_alone(&p, &ctx(), none), one(Problem::Unavailable, "inactive"));
    // Ended wins over inactive.
    p.ends_at = Some(now() - Duration::days(1));
    assert_eq!(problem_alone(&p, &ctx(), none), one(Problem::Expired, "ended"));

    let used_up = Availability { used_up: true, customer_limit_reached: false };
    assert_eq!(problem_alone(&ok, &ctx(), used_up), one(Problem::Unavailable, "usage_limit"));
    let limit = Availability { used_up: false, customer_limit_reached: true };
    assert_eq!(problem_alone(&ok, &ctx(), limit), one(Problem::Unavailable, "customer_limit"));

    let guest = EvalContext { shopper: Shopper { signed_in: false, first_order: false }, ..ctx() };
    let mut p = ok.clone();
    p.conditions.requires_sign_in = true;
    assert_eq!(problem_alone(&p, &guest, none), one(Problem::Unavailable, "sign_in_required"));
    assert!(problem_alone(&p, &ctx(), none).is_empty());

    let mut p = ok.clone();
    p.conditions.first_order = true;
    assert_eq!(problem_alone(&p, &guest, none), one(Problem::NotApplicable, "first_order"));
    assert_eq!(problem_alone(&p, &ctx(), none), one(Problem::NotApplicable, "first_order"));
    let first = EvalContext { shopper: Shopper { signed_in: true, first_order: true }, ..ctx() };
    assert!(problem_alone(&p, &first, none).is_empty());
    // A guest flagged first_order by mistake is still a guest.
    let odd = EvalContext { shopper: Shopper { signed_in: false, first_order: true }, ..ctx() };
    assert_eq!(problem_alone(&p, &odd, none), one(Problem::NotApplicable, "first_order"));
}

#[test]
fn problems_carry_the_code_and_come_in_canonical_order() {
    let mut a = promo("prm_a", PromotionKind::Percent, percent(1_000));
    a.active = false;
    let mut b = promo("prm_b", PromotionKind::Percent, percent(1_000));
    b.priority = 3;
    b.ends_at = Some(now());
    let c = promo("prm_c", PromotionKind::Percent, percent(500));
    let lines = [line("A", "s1", 1, 1_000)];
    let e = evaluate(&lines, &[], &[coded(&c, "SAVE5"), coded(&a, "SAVE10"), auto(&b)], &ctx());
    assert_eq!(problems(&e), vec![("prm_b", Problem::Expired, "ended"), ("prm_a", Problem::Unavailable, "inactive"),]);
    assert_eq!(e.problems[1].code.as_deref(), Some("SAVE10"));
    assert_eq!(e.applied[0].code.as_deref(), Some("SAVE5"));
    assert_eq!(e.applied[0].name, "Promotion prm_c");
    let err = e.problems[1].error();
    assert_eq!(err.code(), commerce_domain::error::ErrorCode::PromotionUnavailable);
}

#[test]
fn a_promotion_given_twice_counts_once_and_keeps_its_code() {
    let p = promo("prm_p", PromotionKind::Percent, percent(1_000));
    let lines = [line("A", "s1", 1, 1_000)];
    for cands in [[auto(&p), coded(&p, "CODE")], [coded(&p, "CODE"), auto(&p)]] {
        let e = evaluate(&lines, &[], &cands, &ctx());
        assert_eq!(applied(&e), vec![("prm_p", 100)]);
        assert_eq!(e.applied[0].code.as_deref(), Some("CODE"));
        assert!(e.problems.is_empty());
    }
    // Two codes of one promotion, one used up: the usable one is kept.
    let mut spent = coded(&p, "AAA");
    spent.availability.used_up = true;
    let e = evaluate(&lines, &[], &[spent, coded(&p, "BBB")], &ctx());
    assert_eq!(e.applied[0].code.as_deref(), Some("BBB"));
}

#[test]
fn shipping_promotions_wait_for_shipping_to_be_priced() {
    let mut free = promo("prm_s", PromotionKind::FreeShipping, None);
    free.combines_with = ALL.to_vec();
    let mut off = promo("prm_o", PromotionKind::Percent, percent(1_000));
    off.combines_with = ALL.to_vec();
    let mut elsewhere = promo("prm_x", PromotionKind::FreeShipping, None);
    elsewhere.scope = seller("s9");
    let cart = EvalContext { shipping_known: false, ..ctx() };
    let lines = [line("A", "s1", 1, 1_000)];
    let e = evaluate(&lines, &[], &[auto(&free), auto(&off), auto(&elsewhere)], &cart);
    assert_eq!(applied(&e), vec![("prm_o", 100)]);
    assert_eq!(e.pending_shipping, vec!["prm_s".to_owned()]);
    assert_eq!(problems(&e), vec![("prm_x", Problem::NotApplicable, "no_eligible_items")]);
}

#[test]
fn huge_amounts_and_quantities_neither_panic_nor_overflow() {
    // 100 lines of i64::MAX / 1000 with u32::MAX units each, every kind at once, combinable.
    let big = i64::MAX / 1_000;
    let lines: Vec<EvalLine> = (0..100)
        .map(|i| EvalLine { amount: big, unit_price: big, quantity: u32::MAX, ..line(&format!("S{i}"), "s1", 1, 1) })
        .collect();
    let shipping = [ship("s1", big)];
    let mut promos = vec![
        promo("prm_1", PromotionKind::Percent, percent(3_333)),
        promo("prm_2", PromotionKind::Fixed, fixed(i64::MAX)),
        promo("prm_3", PromotionKind::BuyXGetY, buy_get(1, 1)),
        promo("prm_4", PromotionKind::FreeShipping, None),
        promo("prm_5", PromotionKind::Fixed, fixed(7)),
    ];
    promos[4].applies_to = skus(&["S1", "S2"]);
    for p in &mut promos {
        p.combines_with = ALL.to_vec();
    }
    let cands: Vec<Candidate> = promos.iter().map(auto).collect();
    let e = evaluate(&lines, &shipping, &cands, &ctx());
    assert!(e.total() > 0);
    for (l, shares) in lines.iter().zip(&e.lines) {
        assert!(shares.iter().map(|s| i128::from(s.amount)).sum::<i128>() <= i128::from(l.amount));
    }
    // A buy 1 get 1 over 2 × (2^32 − 1) units of equal worth: half of them free.
    let two = [EvalLine { amount: 4_294_967_295 * 3, ..lines[0].clone() }, lines[1].clone()];
    let e = evaluate(&two, &[], &[auto(&promos[2])], &ctx());
    assert!(e.total() > 0);

    // Lines adding up beyond i64::MAX cannot be priced: nothing applies, nothing panics.
    let lines = [line("A", "s1", 1, i64::MAX), line("B", "s1", 1, i64::MAX)];
    let e = evaluate(&lines, &[], &cands, &ctx());
    assert!(e.applied.is_empty());
    assert!(e.problems.iter().all(|p| p.reason == "no_discount" || p.reason == "no_eligible_items"));
    // Negative and zero amounts, zero quantities.
    let lines = [EvalLine { amount: -5, ..line("A", "s1", 0, 3) }, line("B", "s1", 0, 0)];
    let e = evaluate(&lines, &[ship("s1", -1)], &cands, &ctx());
    assert!(e.applied.is_empty());
}

#[test]
fn fifteen_combinable_candidates_are_searched_in_reasonable_time() {
    // The worst case: every candidate combines with every other and takes something in every subset (each
    // product one on its own SKU, the order ones on what is left), so all 2^15 subsets are weighed. Measured,
    // not asserted (machines differ).
    let lines: Vec<EvalLine> =
        (0..100).map(|i| line(&format!("S{i}"), &format!("s{}", i % 5), 999, 100_000 + i)).collect();
    let shipping: Vec<EvalShipping> = (0..5).map(|i| ship(&format!("s{i}"), 500)).collect();
    let promos: Vec<Promotion> = (0..15u32)
        .map(|i| {
            let (kind, value) = match i % 3 {
                0 => (PromotionKind::Percent, percent(100 + i)),
                1 => (PromotionKind::BuyXGetY, buy_get(2 + i % 3, 1)),
                _ => (PromotionKind::Fixed, fixed(i64::from(i) + 1)),
            };
            let mut p = promo(&format!("prm_{i:02}"), kind, value);
            if i % 3 != 2 {
                p.applies_to = skus(&[&format!("S{i}"), &format!("S{}", i + 50)]);
            }
            p.combines_with = ALL.to_vec();
            p
        })
        .collect();
    let cands: Vec<Candidate> = promos.iter().map(auto).collect();
    let started = std::time::Instant::now();
    let e = evaluate(&lines, &shipping, &cands, &ctx());
    eprintln!("15 combinable candidates on their own lines, 100 lines of 999 units: {:?}", started.elapsed());
    assert_eq!(e.applied.len(), 15);

    // Overlapping ones defeat the bound (each takes half of everything alone, far less after the others), so
    // nearly every subset is walked.
    let overlapping: Vec<Promotion> = (0..15u32)
        .map(|i| {
            let (kind, value) = match i % 3 {
                0 => (PromotionKind::Percent, percent(5_000 + i)),
                1 => (PromotionKind::BuyXGetY, buy_get(1, 1)),
                _ => (PromotionKind::Percent, percent(4_000 + i)),
            };
            let mut p = promo(&format!("prm_{i:02}"), kind, value);
            if i % 3 != 2 {
                p.applies_to = AppliesTo { categories: vec!["root".to_owned()], ..AppliesTo::default() };
            }
            p.combines_with = ALL.to_vec();
            p
        })
        .collect();
    let cands: Vec<Candidate> = overlapping.iter().map(auto).collect();
    let started = std::time::Instant::now();
    let e = evaluate(&lines, &shipping, &cands, &ctx());
    eprintln!("15 overlapping combinable candidates, 100 lines of 999 units: {:?}", started.elapsed());
    assert!(e.total() > 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Rules of a new and a patched promotion

fn new_promotion() -> NewPromotion {
    NewPromotion {
        name: "Summer".to_owned(),
        code: Some(" summer10 ".to_owned()),
        kind: PromotionKind::Percent,
        value: percent(1_000),
        applies_to: AppliesTo::default(),
        conditions: Conditions::default(),
        starts_at: now() - Duration::days(1),
        ends_at: Some(now() + Duration::days(30)),
        usage_limit: Some(1_000),
        per_customer_limit: Some(1),
        combines_with: vec![DiscountClass::Shipping],
        priority: 0,
        restore_on_cancel: true,
    }
}

fn field_of(result: commerce_domain::error::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_new_promotion_is_checked_field_by_field() {
    assert!(new_promotion().validate(now()).is_ok());
    type Change = Box<dyn Fn(&mut NewPromotion)>;
    let cases: Vec<(&str, Change)> = vec![
        ("name", Box::new(|p| p.name = String::new())),
        ("name", Box::new(|p| p.name = "  ".to_owned())),
        ("name", Box::new(|p| p.name = "x".repeat(201))),
        ("code", Box::new(|p| p.code = Some("a b".to_owned()))),
        ("code", Box::new(|p| p.code = Some("AB".to_owned()))),
        ("value", Box::new(|p| p.value = None)),
        ("value", Box::new(|p| p.value = buy_get(1, 1))),
        ("value.percent_bp", Box::new(|p| p.value = percent(0))),
        ("value.percent_bp", Box::new(|p| p.value = percent(10_001))),
        ("value.amount", Box::new(|p| (p.kind, p.value) = (PromotionKind::Fixed, fixed(0)))),
        ("value.amount", Box::new(|p| (p.kind, p.value) = (PromotionKind::Fixed, fixed(10_000_000_001)))),
        ("value", Box::new(|p| (p.kind, p.value) = (PromotionKind::Fixed, percent(10)))),
        ("value.buy", Box::new(|p| (p.kind, p.value) = (PromotionKind::BuyXGetY, buy_get(0, 1)))),
        ("value.buy", Box::new(|p| (p.kind, p.value) = (PromotionKind::BuyXGetY, buy_get(101, 1)))),
        ("value.get", Box::new(|p| (p.kind, p.value) = (PromotionKind::BuyXGetY, buy_get(1, 0)))),
        ("value.get", Box::new(|p| (p.kind, p.value) = (PromotionKind::BuyXGetY, buy_get(1, 101)))),
        ("value", Box::new(|p| (p.kind, p.value) = (PromotionKind::FreeShipping, percent(10)))),
        ("applies_to.skus", Box::new(|p| p.applies_to.skus = vec!["x".to_owned(); MAX_TARGETS + 1])),
        ("applies_to.skus", Box::new(|p| p.applies_to.skus = vec![String::new()])),
        ("applies_to.categories", Box::new(|p| p.applies_to.categories = vec![" ".to_owned()])),
        ("applies_to.products", Box::new(|p| p.applies_to.products = vec!["x".to_owned(); MAX_TARGETS + 1])),
        ("conditions.min_subtotal", Box::new(|p| p.conditions.min_subtotal = Some(usd(0)))),
        (
            "conditions.min_subtotal",
            Box::new(|p| {
                (p.kind, p.value) = (PromotionKind::Fixed, fixed(100));
                p.conditions.min_subtotal = Some(Money::new(1_000, Currency::EUR));
            }),
        ),
        ("ends_at", Box::new(|p| p.ends_at = Some(p.starts_at))),
        ("ends_at", Box::new(|p| p.ends_at = Some(now()))),
        (
            "ends_at",
            Box::new(|p| (p.starts_at, p.ends_at) = (now() - Duration::days(9), Some(now() - Duration::days(1)))),
        ),
        ("usage_limit", Box::new(|p| p.usage_limit = Some(0))),
        ("usage_limit", Box::new(|p| p.usage_limit = Some(MAX_USAGE_LIMIT + 1))),
        ("per_customer_limit", Box::new(|p| p.per_customer_limit = Some(0))),
        ("combines_with", Box::new(|p| p.combines_with = vec![DiscountClass::Order, DiscountClass::Order])),
    ];
    for (field, change) in cases {
        let mut p = new_promotion();
        change(&mut p);
        assert_eq!(field_of(p.validate(now())), field, "{p:?}");
    }
    // What passes: no code, no end, no limits, free shipping without a value, 200 characters, 100 targets.
    let mut p = new_promotion();
    (p.code, p.ends_at, p.usage_limit, p.per_customer_limit) = (None, None, None, None);
    (p.kind, p.value) = (PromotionKind::FreeShipping, None);
    p.name = "é".repeat(200);
    p.applies_to.skus = vec!["x".to_owned(); MAX_TARGETS];
    p.conditions.min_subtotal = Some(usd(1));
    assert!(p.validate(now()).is_ok());
    let mut p = new_promotion();
    (p.kind, p.value) = (PromotionKind::Fixed, fixed(100));
    p.conditions.min_subtotal = Some(usd(1_000));
    assert!(p.validate(now()).is_ok());
}

#[test]
fn a_value_of_the_wrong_shape_is_refused_on_the_value_field() {
    let json = serde_json::json!({
        "name": "Bogus", "kind": "percent", "value": {"buy": 1, "get": 1}, "starts_at": "2026-01-01T00:00:00Z"
    });
    let p: NewPromotion = serde_json::from_value(json).unwrap();
    assert_eq!(field_of(p.validate(now())), "value");
    let json = serde_json::json!({
        "name": "Ten", "kind": "fixed", "value": {"amount": {"amount": 500, "currency": "USD"}},
        "starts_at": "2026-01-01T00:00:00Z"
    });
    let p: NewPromotion = serde_json::from_value(json).unwrap();
    assert!(p.validate(now()).is_ok());
    assert!(p.restore_on_cancel, "restore_on_cancel defaults to true");
}

#[test]
fn a_new_promotion_is_stored_normalized_active_at_version_one() {
    let p = new_promotion().into_promotion("prm_1".to_owned(), seller("s1"), now()).unwrap();
    assert_eq!(p.code.as_deref(), Some("SUMMER10"));
    assert_eq!((p.version, p.active, p.shards), (1, true, 16));
    assert_eq!((p.created_at, p.updated_at), (now(), now()));
    assert_eq!(p.scope, seller("s1"));
    let mut small = new_promotion();
    small.usage_limit = Some(120);
    assert_eq!(small.into_promotion("prm_2".to_owned(), Scope::Platform, now()).unwrap().shards, 3);
    let mut bad = new_promotion();
    bad.value = percent(0);
    assert_eq!(field_of(bad.into_promotion("prm_3".to_owned(), Scope::Platform, now())), "value.percent_bp");
}

#[test]
fn a_patch_is_checked_like_a_new_promotion_and_bumps_the_version() {
    let mut p = new_promotion().into_promotion("prm_1".to_owned(), Scope::Platform, now()).unwrap();
    let later = now() + Duration::hours(1);
    let patch = PromotionPatch {
        name: Some("Summer sale".to_owned()),
        value: percent(1_500),
        ends_at: Some(None),
        usage_limit: Some(None),
        active: Some(false),
        ..PromotionPatch::default()
    };
    p.apply(patch, later).unwrap();
    assert_eq!(p.name, "Summer sale");
    assert_eq!(p.value, percent(1_500));
    assert_eq!((p.ends_at, p.usage_limit, p.active), (None, None, false));
    assert_eq!((p.version, p.updated_at, p.created_at), (2, later, now()));
    assert_eq!(p.shards, 16, "shards never change");

    // A refused PATCH changes nothing.
    let before = p.clone();
    let bad = PromotionPatch { name: Some("Fine".to_owned()), value: fixed(100), ..PromotionPatch::default() };
    assert_eq!(field_of(p.apply(bad, later)), "value");
    assert_eq!(p, before);

    // The end may lie in the past only if the PATCH does not move it.
    let mut ended = promo("prm_e", PromotionKind::Percent, percent(1_000));
    ended.ends_at = Some(now() - Duration::days(1));
    ended.apply(PromotionPatch { active: Some(false), ..PromotionPatch::default() }, now()).unwrap();
    assert_eq!(ended.version, 2);
    let same_end = PromotionPatch { ends_at: Some(ended.ends_at), ..PromotionPatch::default() };
    ended.apply(same_end, now()).unwrap();
    let moved = PromotionPatch { ends_at: Some(Some(now() - Duration::hours(1))), ..PromotionPatch::default() };
    assert_eq!(field_of(ended.apply(moved, now())), "ends_at");
    let start_after_end = PromotionPatch { starts_at: Some(now()), ..PromotionPatch::default() };
    assert_eq!(field_of(ended.apply(start_after_end, now())), "ends_at");
    let bad_limit = PromotionPatch { per_customer_limit: Some(Some(0)), ..PromotionPatch::default() };
    assert_eq!(field_of(ended.apply(bad_limit, now())), "per_customer_limit");
}

// ---------------------------------------------------------------------------------------------------------------
// Codes

#[test]
fn generated_codes_are_distinct_crockford_and_prefixed() {
    let codes = generate_codes(" spring-", MAX_CODES_PER_BATCH).unwrap();
    assert_eq!(codes.len(), MAX_CODES_PER_BATCH as usize);
    let distinct: std::collections::HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), codes.len());
    for code in &codes {
        let random = code.strip_prefix("SPRING-").unwrap();
        assert_eq!(random.len(), 10);
        assert!(random.bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)), "{code}");
        assert_eq!(normalize_code(code).unwrap(), *code, "a generated code is a valid code");
    }
    let bare = generate_codes("", 3).unwrap();
    assert!(bare.iter().all(|c| c.len() == 10));
    assert_eq!(generate_codes("x_", 1).unwrap()[0].len(), 12);
    assert_eq!(generate_codes("A".repeat(16).as_str(), 1).unwrap()[0].len(), 26);

    assert_eq!(field_of(generate_codes("SPRING", 0)), "count");
    assert_eq!(field_of(generate_codes("SPRING", MAX_CODES_PER_BATCH + 1)), "count");
    assert_eq!(field_of(generate_codes("A".repeat(17).as_str(), 1)), "prefix");
    assert_eq!(field_of(generate_codes("no way", 1)), "prefix");
    assert_eq!(field_of(generate_codes("ÉTÉ", 1)), "prefix");
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

const SELLERS: [&str; 3] = ["s1", "s2", "s3"];
const CATEGORIES: [&str; 3] = ["shoes", "hats", "bags"];

fn cart() -> impl Strategy<Value = Vec<EvalLine>> {
    proptest::collection::vec((1i64..=100_000_000, 1u32..=20, 0usize..3, 0usize..3), 1..=20).prop_map(|lines| {
        lines
            .into_iter()
            .enumerate()
            .map(|(i, (price, quantity, seller, category))| EvalLine {
                sku: format!("SKU{i}"),
                product_id: format!("prd_{}", i % 7),
                seller_id: SELLERS[seller].to_owned(),
                categories: vec!["root".to_owned(), CATEGORIES[category].to_owned()],
                quantity,
                unit_price: price,
                amount: price * i64::from(quantity),
            })
            .collect()
    })
}

fn shipping_of() -> impl Strategy<Value = Vec<EvalShipping>> {
    proptest::collection::vec(0i64..=5_000, 3)
        .prop_map(|amounts| amounts.into_iter().zip(SELLERS).map(|(amount, s)| ship(s, amount)).collect())
}

/// A random promotion: kind and value, target (none, a category, some SKUs, a product), scope, classes it
/// combines with, priority, and sometimes a minimum.
fn promotion(id: usize) -> impl Strategy<Value = Promotion> {
    (
        0u8..4,
        (1u32..=10_000, 1i64..=50_000_000, 1u32..=4, 1u32..=3),
        0u8..4,
        0u8..4,
        proptest::collection::vec(any::<bool>(), 3),
        -2i32..=2,
        proptest::option::weighted(0.2, 1i64..=200_000_000),
    )
        .prop_map(move |(kind, (bp, amount, buy, get), target, scope, combines, priority, min)| {
            let (kind, value) = match kind {
                0 => (PromotionKind::Percent, percent(bp)),
                1 => (PromotionKind::Fixed, fixed(amount)),
                2 => (PromotionKind::BuyXGetY, buy_get(buy, get)),
                _ => (PromotionKind::FreeShipping, None),
            };
            let mut p = promo(&format!("prm_{id:02}"), kind, value);
            p.applies_to = match target {
                0 => AppliesTo::default(),
                1 => AppliesTo { categories: vec![CATEGORIES[id % 3].to_owned()], ..AppliesTo::default() },
                2 => skus(&["SKU0", "SKU3", "SKU4"]),
                _ => AppliesTo { products: vec![format!("prd_{}", id % 7)], ..AppliesTo::default() },
            };
            p.scope = if scope < 3 { Scope::Platform } else { seller(SELLERS[id % 3]) };
            p.combines_with = ALL.iter().zip(combines).filter(|(_, on)| *on).map(|(c, _)| *c).collect();
            p.priority = priority;
            p.conditions.min_subtotal = min.map(usd);
            p
        })
}

fn promotions() -> impl Strategy<Value = Vec<Promotion>> {
    (1usize..=8).prop_flat_map(|n| (0..n).map(promotion).collect::<Vec<_>>())
}

fn candidates(promos: &[Promotion]) -> Vec<Candidate<'_>> {
    promos.iter().enumerate().map(|(i, p)| if i % 2 == 0 { auto(p) } else { coded(p, &format!("CODE{i}")) }).collect()
}

/// 256 cases; failures kept next to this file (`promotions.proptest-regressions`), as an integration test has
/// no `lib.rs` for proptest to find.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Shares add up: per promotion to its applied amount, all to the total; no line or shipping goes below
    /// zero; every share is positive.
    #[test]
    fn shares_add_up_and_nothing_goes_below_zero(lines in cart(), shipping in shipping_of(), promos in promotions()) {
        let e = evaluate(&lines, &shipping, &candidates(&promos), &ctx());
        prop_assert_eq!(e.lines.len(), lines.len());
        prop_assert_eq!(e.shipping.len(), shipping.len());
        for a in &e.applied {
            let taken: i64 = e.lines.iter().chain(&e.shipping).flatten().filter(|s| s.promotion_id == a.promotion_id).map(|s| s.amount).sum();
            prop_assert_eq!(taken, a.amount);
            prop_assert!(a.amount > 0);
        }
        let all: i64 = e.lines.iter().chain(&e.shipping).flatten().map(|s| s.amount).sum();
        prop_assert_eq!(all, e.total());
        prop_assert!(e.lines.iter().chain(&e.shipping).flatten().all(|s| s.amount > 0));
        prop_assert!(e.lines.iter().chain(&e.shipping).flatten().all(|s| e.applied.iter().any(|a| a.promotion_id == s.promotion_id)));
        for (l, shares) in lines.iter().zip(&e.lines) {
            prop_assert!(shares.iter().map(|s| s.amount).sum::<i64>() <= l.amount);
        }
        for (s, shares) in shipping.iter().zip(&e.shipping) {
            prop_assert!(shares.iter().map(|s| s.amount).sum::<i64>() <= s.amount);
        }
        // Every candidate is either applied or has exactly one problem.
        for p in &promos {
            let n = e.applied.iter().filter(|a| a.promotion_id == p.promotion_id).count()
                + e.problems.iter().filter(|q| q.promotion_id == p.promotion_id).count();
            prop_assert_eq!(n, 1);
        }
    }

    /// The answer does not depend on the order the candidates come in.
    #[test]
    fn the_order_of_the_candidates_does_not_matter(lines in cart(), shipping in shipping_of(), promos in promotions(), turn in 0usize..8) {
        let cands = candidates(&promos);
        let e = evaluate(&lines, &shipping, &cands, &ctx());
        let mut reversed = cands.clone();
        reversed.reverse();
        prop_assert_eq!(&evaluate(&lines, &shipping, &reversed, &ctx()), &e);
        let mut rotated = cands.clone();
        rotated.rotate_left(turn % cands.len());
        prop_assert_eq!(&evaluate(&lines, &shipping, &rotated, &ctx()), &e);
    }

    /// Applied promotions combine pairwise; an exclusive one is applied alone.
    #[test]
    fn applied_promotions_combine(lines in cart(), shipping in shipping_of(), promos in promotions()) {
        let e = evaluate(&lines, &shipping, &candidates(&promos), &ctx());
        let find = |id: &str| promos.iter().find(|p| p.promotion_id == id).unwrap();
        for (i, a) in e.applied.iter().enumerate() {
            let pa = find(&a.promotion_id);
            prop_assert_eq!(a.class, pa.class());
            if pa.combines_with.is_empty() {
                prop_assert_eq!(e.applied.len(), 1);
            }
            for b in &e.applied[i + 1..] {
                prop_assert!(pa.combines(find(&b.promotion_id)));
            }
        }
        // Application order: class, then priority high to low, then id.
        let keys: Vec<_> = e.applied.iter().map(|a| { let p = find(&a.promotion_id); (p.class(), -p.priority, p.promotion_id.clone()) }).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    /// The chosen set discounts at least as much as any candidate alone, and as any part of the candidates.
    #[test]
    fn the_best_set_beats_every_single_candidate(lines in cart(), shipping in shipping_of(), promos in promotions(), pick in any::<u8>()) {
        let cands = candidates(&promos);
        let e = evaluate(&lines, &shipping, &cands, &ctx());
        for c in &cands {
            let alone = evaluate(&lines, &shipping, std::slice::from_ref(c), &ctx());
            prop_assert!(e.total() >= alone.total(), "{} alone gives {}, the set {}", c.promotion.promotion_id, alone.total(), e.total());
        }
        let part: Vec<Candidate> = cands.iter().enumerate().filter(|(i, _)| pick & (1 << i) != 0).map(|(_, c)| c.clone()).collect();
        prop_assert!(e.total() >= evaluate(&lines, &shipping, &part, &ctx()).total());
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A brute-force reference: every unit one by one, every subset by bitmask, no pruning. Slow and plain, written
// from the rules rather than from the engine.

type Shares = Vec<Vec<Share>>;

/// A weighed subset: total, size, members (canonical indexes), applied, line shares, shipping shares.
type Weighed = (i64, usize, Vec<usize>, Vec<(String, i64)>, Shares, Shares);

fn reference(
    lines: &[EvalLine],
    shipping: &[EvalShipping],
    promos: &[Promotion],
) -> (Vec<(String, i64)>, Shares, Shares) {
    let mut canonical: Vec<&Promotion> = promos.iter().collect();
    canonical.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.promotion_id.cmp(&b.promotion_id)));
    let passing: Vec<&Promotion> = canonical
        .into_iter()
        .filter(|p| {
            let subtotal: i64 = lines.iter().filter(|l| p.in_scope(l)).map(|l| l.amount).sum();
            let min_ok = p.conditions.min_subtotal.is_none_or(|m| subtotal >= m.amount);
            let targeted: Vec<&EvalLine> = lines.iter().filter(|l| p.targets(l)).collect();
            let shipped = p.class() != DiscountClass::Shipping
                || shipping.iter().any(|s| targeted.iter().any(|l| l.seller_id == s.seller_id));
            min_ok && !targeted.is_empty() && shipped
        })
        .collect();
    let mut best: Option<Weighed> = None;
    for mask in 0u32..(1 << passing.len()) {
        let members: Vec<usize> = (0..passing.len()).filter(|i| mask & (1 << i) != 0).collect();
        let combinable = members.iter().all(|&a| members.iter().all(|&b| a == b || passing[a].combines(passing[b])));
        if !combinable {
            continue;
        }
        let mut order = members.clone();
        order.sort_by_key(|&i| (passing[i].class(), i));
        let mut left: Vec<i64> = lines.iter().map(|l| l.amount).collect();
        let mut ship_left: Vec<i64> = shipping.iter().map(|s| s.amount).collect();
        let (mut line_shares, mut ship_shares): (Shares, Shares) =
            (vec![vec![]; lines.len()], vec![vec![]; shipping.len()]);
        let mut applied = Vec::new();
        let mut zero = false;
        for &i in &order {
            let p = passing[i];
            let (ls, ss) = reference_one(p, lines, shipping, &left, &ship_left);
            let amount: i64 = ls.iter().chain(&ss).sum();
            zero |= amount == 0;
            for (k, a) in ls.iter().enumerate().filter(|(_, a)| **a > 0) {
                left[k] -= a;
                line_shares[k].push(share(&p.promotion_id, *a));
            }
            for (k, a) in ss.iter().enumerate().filter(|(_, a)| **a > 0) {
                ship_left[k] -= a;
                ship_shares[k].push(share(&p.promotion_id, *a));
            }
            applied.push((p.promotion_id.clone(), amount));
        }
        if zero {
            continue; // the same as the smaller set without the member that took nothing
        }
        let total: i64 = applied.iter().map(|a| a.1).sum();
        let better = match &best {
            None => true,
            Some((t, n, m, ..)) => {
                (total, std::cmp::Reverse(members.len()), std::cmp::Reverse(&members))
                    > (*t, std::cmp::Reverse(*n), std::cmp::Reverse(m))
            }
        };
        if better {
            best = Some((total, members.len(), members, applied, line_shares, ship_shares));
        }
    }
    let (_, _, _, applied, l, s) = best.unwrap();
    (applied, l, s)
}

/// One promotion's shares of what is left, per line and per shipping.
fn reference_one(
    p: &Promotion,
    lines: &[EvalLine],
    shipping: &[EvalShipping],
    left: &[i64],
    ship_left: &[i64],
) -> (Vec<i64>, Vec<i64>) {
    let mut ls = vec![0i64; lines.len()];
    let mut ss = vec![0i64; shipping.len()];
    let targeted: Vec<usize> = (0..lines.len()).filter(|&i| p.targets(&lines[i])).collect();
    let half_up = |n: i128, d: i128| i64::try_from((2 * n + d) / (2 * d)).unwrap();
    match (p.class(), p.value) {
        (DiscountClass::Shipping, _) => {
            for (j, s) in shipping.iter().enumerate() {
                if targeted.iter().any(|&i| lines[i].seller_id == s.seller_id) {
                    ss[j] = ship_left[j];
                }
            }
        }
        (DiscountClass::Product, Some(PromotionValue::Percent { percent_bp })) => {
            for &i in &targeted {
                ls[i] = half_up(i128::from(left[i]) * i128::from(percent_bp), 10_000);
            }
        }
        (DiscountClass::Product, Some(PromotionValue::Fixed { amount })) => {
            for &i in &targeted {
                ls[i] = left[i].min(amount.amount * i64::from(lines[i].quantity));
            }
        }
        (DiscountClass::Product, Some(PromotionValue::BuyGet { buy, get })) => {
            let mut units: Vec<(i64, usize)> = Vec::new();
            for &i in &targeted {
                for u in 0..lines[i].quantity {
                    units.push((commerce_domain::tax::cumulative_share(left[i], lines[i].quantity, u, 1), i));
                }
            }
            units.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let group = (buy + get) as usize;
            let full = units.len() / group * group;
            for (pos, (worth, i)) in units.iter().enumerate().take(full) {
                if pos % group >= buy as usize {
                    ls[*i] += worth;
                }
            }
        }
        (DiscountClass::Order, value) => {
            let sum: i64 = targeted.iter().map(|&i| left[i]).sum();
            let total = match value {
                Some(PromotionValue::Percent { percent_bp }) => {
                    half_up(i128::from(sum) * i128::from(percent_bp), 10_000)
                }
                Some(PromotionValue::Fixed { amount }) => amount.amount.min(sum),
                _ => 0,
            };
            if sum > 0 {
                let exact: Vec<(usize, i128, i128)> = targeted
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            i128::from(total) * i128::from(left[i]) / i128::from(sum),
                            i128::from(total) * i128::from(left[i]) % i128::from(sum),
                        )
                    })
                    .collect();
                let mut rest = i128::from(total) - exact.iter().map(|e| e.1).sum::<i128>();
                let mut by_remainder = exact.clone();
                by_remainder.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
                for (i, floor, _) in &exact {
                    ls[*i] = i64::try_from(*floor).unwrap();
                }
                for (i, _, _) in by_remainder {
                    if rest == 0 {
                        break;
                    }
                    ls[i] += 1;
                    rest -= 1;
                }
            }
        }
        _ => {}
    }
    (ls, ss)
}

proptest! {
    #![proptest_config(config())]

    /// The engine agrees with the brute-force reference on the applied set, every line's shares and every
    /// shipping's.
    #[test]
    fn the_engine_matches_a_brute_force_reference(lines in cart(), shipping in shipping_of(), promos in promotions()) {
        let e = evaluate(&lines, &shipping, &candidates(&promos), &ctx());
        let (applied, line_shares, ship_shares) = reference(&lines, &shipping, &promos);
        let got: Vec<(String, i64)> = e.applied.iter().map(|a| (a.promotion_id.clone(), a.amount)).collect();
        prop_assert_eq!(got, applied);
        prop_assert_eq!(e.lines, line_shares);
        prop_assert_eq!(e.shipping, ship_shares);
    }
}
