"""Generation rules for the OpenAPI property test that a JSON Schema cannot state.

Each rule below is one the document states in prose (a reference to something that must exist, an order between
two fields, a rule across the items of a list). The generator is told it here, so that a request it calls valid
is one the document promises to accept. Nothing else is changed, and negative cases are left alone.
"""

import hashlib
import itertools
import hmac
import json
import os
import time
from collections.abc import MutableMapping
from datetime import datetime, timedelta, timezone

import schemathesis

# A root category without attribute definitions, made for the run (any attribute names are accepted there).
OPEN_CATEGORY = os.environ.get("OPENAPI_OPEN_CATEGORY", "cat_books")


_NAMES = itertools.count()


def _operation_id(case):
    return case.operation.definition.raw.get("operationId")


def _positive(case):
    meta = case.meta
    return meta is None or meta.generation.mode.is_positive


def _product_body(body, *, create):
    """Products: an existing category; variants told apart by their options; one currency; bundles left out
    (a bundle's components must be SKUs the seller already has)."""
    if not isinstance(body, dict):
        return
    if create or "category_id" in body or "attributes" in body:
        body["category_id"] = OPEN_CATEGORY
    variants = body.get("variants")
    if isinstance(variants, list):
        currency = None
        for i, variant in enumerate(variants):
            if not isinstance(variant, dict):
                continue
            variant.pop("components", None)
            if isinstance(variant.get("sku"), str):
                # A SKU appears once in a product.
                variant["sku"] = f"{variant['sku'][:56]}-{i}"
            options = variant.get("options")
            if isinstance(options, dict):
                options["variant"] = f"v{i}"
                while len(options) > 10:
                    options.pop(next(k for k in options if k != "variant"))
            elif len(variants) > 1:
                variant["options"] = {"variant": f"v{i}"}
            price = variant.get("price")
            if isinstance(price, dict):
                currency = currency or price.get("currency")
                price["currency"] = currency
            # A compare-at price is above the price, in its currency.
            was = variant.get("compare_at_price")
            if isinstance(was, dict):
                low, high = _integer((price or {}).get("amount")), _integer(was.get("amount"))
                if low is None or high is None or high <= low:
                    variant.pop("compare_at_price")
                else:
                    was["currency"] = currency


def _category_body(body):
    """Categories: an existing parent; each attribute defined once."""
    if "parent_id" in body:
        body["parent_id"] = OPEN_CATEGORY
    definitions = body.get("attributes")
    if isinstance(definitions, list):
        # A name is defined once in a category, and keeps one type up and down the tree: every generated
        # definition gets a name of its own.
        for definition in definitions:
            if isinstance(definition, dict) and isinstance(definition.get("name"), str):
                definition["name"] = f"{definition['name'][:30]}_{next(_NAMES)}"


def _flash_sale_body(body):
    """Flash sales: a SKU of the seller's, priced in its product's currency, and `ends_at` after `starts_at`."""
    if not isinstance(body, dict):
        return
    body["sku"] = os.environ.get("OPENAPI_SELLER_SKU", body.get("sku"))
    shards, units = _integer(body.get("shards")), _integer(body.get("units"))
    if shards is not None and units is not None:
        body["shards"] = min(shards, units)
    lanes = _integer(body.get("lanes"))
    if lanes is not None:
        # At most 16 lanes per shard (one shard at the least) and the deployment's worker concurrency.
        body["lanes"] = max(1, min(lanes, 16))
    if isinstance(body.get("price"), dict):
        body["price"]["currency"] = os.environ.get("OPENAPI_SELLER_CURRENCY", "USD")
    body.pop("warehouse_id", None)
    start = datetime.now(timezone.utc) + timedelta(hours=1)
    body["starts_at"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["ends_at"] = (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tax_region_body(case):
    """Tax regions: `combinable` for a subdivision only; each tax class listed once."""
    body = case.body
    if not isinstance(body, dict):
        return
    region = case.path_parameters.get("region") if isinstance(case.path_parameters, MutableMapping) else None
    if isinstance(region, str) and "-" not in region and body.get("combinable") is True:
        body["combinable"] = False
    rates = body.get("rates")
    if isinstance(rates, list):
        seen = set()
        for i, rate in enumerate(rates):
            if not isinstance(rate, dict) or not isinstance(rate.get("tax_class"), str):
                continue
            tax_class = rate["tax_class"]
            while tax_class in seen:
                tax_class = f"{rate['tax_class'][:24]}_{i}_{next(_NAMES) % 1000}"
            rate["tax_class"] = tax_class
            seen.add(tax_class)


def _shipping_rate(rate):
    """A shipping rate: weight tiers rising and in one currency, a free-over threshold in its amount's currency."""
    if not isinstance(rate, dict):
        return
    tiers = rate.get("tiers")
    if isinstance(tiers, list) and tiers and all(isinstance(t, dict) for t in tiers):
        rising = {}
        for tier in sorted(tiers, key=lambda t: _integer(t.get("up_to_grams")) or 0):
            rising.setdefault(_integer(tier.get("up_to_grams")), tier)
        rate["tiers"] = list(rising.values())
        currency = None
        for tier in rate["tiers"]:
            if isinstance(tier.get("amount"), dict):
                currency = currency or tier["amount"].get("currency")
                tier["amount"]["currency"] = currency
    amount, threshold = rate.get("amount"), rate.get("threshold")
    if isinstance(amount, dict) and isinstance(threshold, dict):
        threshold["currency"] = amount.get("currency")


def _shipping_method_body(body):
    """Shipping methods: `max_days` not below `min_days`; the rate's rules above."""
    if not isinstance(body, dict):
        return
    low, high = _integer(body.get("min_days")), _integer(body.get("max_days"))
    if low is not None and high is not None and low > high:
        body["min_days"], body["max_days"] = high, low
    _shipping_rate(body.get("rate"))


def _when(delta):
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _promotion_body(body, *, create):
    """Promotions: a name that is not blank and has no control character; the value the kind takes (none for
    free_shipping) with a positive amount, and the minimum in the same currency; no blank target id; a window
    that ends after it starts and in the future; each class once. A change leaves the value and the usage limit
    alone (their rules depend on the stored kind and limit)."""
    if not isinstance(body, dict):
        return
    name = body.get("name")
    if create or "name" in body:
        blank = not isinstance(name, str) or not name.strip() or len(name) > 200
        if blank or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
            body["name"] = f"Promotion {next(_NAMES)}"
    if create:
        values = {
            "percent": {"percent_bp": 1000},
            "fixed": {"amount": {"amount": 500, "currency": "USD"}},
            "buy_x_get_y": {"buy": 2, "get": 1},
        }
        kind = body.get("kind")
        if kind in values:
            body["value"] = values[kind]
        else:
            body.pop("value", None)
    else:
        body.pop("value", None)
        body.pop("usage_limit", None)
    targets = body.get("applies_to")
    if isinstance(targets, dict):
        for key in ("categories", "products", "skus"):
            if isinstance(targets.get(key), list):
                targets[key] = [t for t in targets[key] if isinstance(t, str) and t.strip()]
    conditions = body.get("conditions")
    if isinstance(conditions, dict) and isinstance(conditions.get("min_subtotal"), dict):
        conditions["min_subtotal"] = {"amount": 5000, "currency": "USD"}
    if create or "starts_at" in body:
        body["starts_at"] = _when(timedelta(hours=-1))
    if body.get("ends_at") is not None:
        body["ends_at"] = _when(timedelta(days=30))
    if isinstance(body.get("combines_with"), list):
        body["combines_with"] = list(dict.fromkeys(c for c in body["combines_with"] if isinstance(c, str)))


# A seller has at most 50 shipping methods (422 naming `name` past them): the methods the run creates are deleted
# again before the seller's reach that many.
_CREATED_METHODS = []
_METHODS_KEPT = 30


def _forget_created_methods():
    import requests

    url, token = os.environ.get("API_URL", "").rstrip("/"), os.environ.get("SELLER_TOKEN", "")
    while _CREATED_METHODS:
        method_id = _CREATED_METHODS.pop()
        requests.delete(
            f"{url}/v1/seller/shipping/methods/{method_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


def _sign_webhook(case):
    """The payment webhook: signed with the endpoint secret, as the provider signs it."""
    secret = os.environ.get("PAYMENT_WEBHOOK_SECRET")
    if not secret or not isinstance(case.body, dict):
        return
    now = int(time.time())
    created = _integer(case.body.get("created"))
    if created is not None and created > now:
        # An event dated ahead of the provider's clock is refused (400 `created`): the provider never sends one.
        case.body["created"] = now
    # The bytes `requests` sends for a JSON body (`json=`): the standard library's dumps with its defaults.
    payload = json.dumps(case.body, allow_nan=False)
    digest = hmac.new(secret.encode(), f"{now}.{payload}".encode(), hashlib.sha256).hexdigest()
    if not isinstance(case.headers, MutableMapping):
        case.headers = {}
    case.headers["Stripe-Signature"] = f"t={now},v1={digest}"


# A seller has at most 10 webhook endpoints (422 naming `url` past them): the run deletes the ones it made.
_CREATED_WEBHOOKS = []
_WEBHOOKS_KEPT = 5


def _forget_created_webhooks():
    import requests

    url, token = os.environ.get("API_URL", "").rstrip("/"), os.environ.get("SELLER_TOKEN", "")
    while _CREATED_WEBHOOKS:
        webhook_id = _CREATED_WEBHOOKS.pop()
        requests.delete(f"{url}/v1/seller/webhooks/{webhook_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _webhook_body(body):
    """An endpoint's URL is https to a public host (the document says so in prose; a schema cannot)."""
    if isinstance(body, dict) and "url" in body:
        body["url"] = f"https://hooks.example.com/{next(_NAMES)}"


def _sign_carrier_webhook(case):
    """A carrier's webhook: signed with the carriers' secret, in the payments' scheme."""
    secret = os.environ.get("CARRIER_WEBHOOK_SECRET")
    if not secret or not isinstance(case.body, dict):
        return
    now = int(time.time())
    payload = json.dumps(case.body, allow_nan=False)
    digest = hmac.new(secret.encode(), f"{now}.{payload}".encode(), hashlib.sha256).hexdigest()
    if not isinstance(case.headers, MutableMapping):
        case.headers = {}
    case.headers["Carrier-Signature"] = f"t={now},v1={digest}"


def _tracking_update(body):
    """A tracking update happened already (more than an hour ahead is 422 by design): a time in the past hour."""
    if isinstance(body, dict) and "occurred_at" in body:
        body["occurred_at"] = _when(-timedelta(minutes=next(_NAMES) % 60))


def _ship_body(body):
    """A named carrier's number is letters, digits and `-`, and its link is ours; `other` takes an https link."""
    if not isinstance(body, dict):
        return
    carrier = body.get("carrier", "other")
    number = body.get("tracking_number")
    if carrier != "other" and isinstance(number, str):
        cleaned = "".join(c for c in number if c.isascii() and (c.isalnum() or c == "-"))
        body["tracking_number"] = cleaned or "1Z999"
        body.pop("tracking_url", None)
    elif "tracking_url" in body:
        body["tracking_url"] = f"https://track.example.com/{next(_NAMES)}"


def _integer(value):
    """A JSON integer as Python reads it back: `30` or `30.0`."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


@schemathesis.hook
def before_call(context, case, kwargs):
    """Applied to every request just before it is sent, whatever phase made it."""
    query = case.query
    if isinstance(query, MutableMapping):
        # `cursor` is only ever a `next_cursor` the same listing issued; any other string is 400 by design.
        query.pop("cursor", None)
    if not _positive(case):
        return
    operation = _operation_id(case)
    headers = case.headers if isinstance(case.headers, MutableMapping) else None
    if headers and isinstance(headers.get("Idempotency-Key"), str):
        # One key names one request: the same key with another body is 422 `idempotency_key_reused`.
        headers["Idempotency-Key"] = f"{headers['Idempotency-Key'][:200]}.{next(_NAMES)}"
    if operation == "createProduct":
        _product_body(case.body, create=True)
    elif operation == "updateProduct":
        _product_body(case.body, create=False)
    elif operation in ("createCategory", "updateCategory") and isinstance(case.body, dict):
        _category_body(case.body)
        if operation == "updateCategory" and isinstance(case.path_parameters, MutableMapping):
            if case.path_parameters.get("category_id") == OPEN_CATEGORY:
                # Definitions added to the run's open category would make its products' attributes wrong.
                case.path_parameters["category_id"] = "cat_books"
    elif operation == "searchProducts" and isinstance(query, MutableMapping):
        # A price range runs from `price_min` up to `price_max`.
        low, high = _integer(query.get("price_min")), _integer(query.get("price_max"))
        if low is not None and high is not None and low > high:
            query["price_min"], query["price_max"] = high, low
    elif operation == "createFlashSale":
        _flash_sale_body(case.body)
    elif operation == "putTaxRegion":
        _tax_region_body(case)
    elif operation in ("createShippingMethod", "updateShippingMethod"):
        _shipping_method_body(case.body)
    elif operation in ("createAdminPromotion", "createSellerPromotion"):
        _promotion_body(case.body, create=True)
    elif operation in ("updateAdminPromotion", "updateSellerPromotion"):
        _promotion_body(case.body, create=False)
    elif operation == "createWebhook":
        _webhook_body(case.body)
    elif operation == "shipOrder":
        _ship_body(case.body)
    elif operation == "trackShipment":
        _tracking_update(case.body)
    elif operation == "carrierWebhook":
        _tracking_update(case.body)
        _sign_carrier_webhook(case)
    elif operation == "paymentWebhook":
        # Signed last, over the body as it is sent.
        _sign_webhook(case)


@schemathesis.hook
def after_call(context, case, response):
    """Applied to every answer: keeps the seller's shipping methods and webhook endpoints under their limits."""
    if _operation_id(case) == "createWebhook" and response.status_code == 201:
        try:
            _CREATED_WEBHOOKS.append(response.json()["webhook_id"])
        except (ValueError, KeyError, TypeError):
            return
        if len(_CREATED_WEBHOOKS) >= _WEBHOOKS_KEPT:
            _forget_created_webhooks()
        return
    if _operation_id(case) != "createShippingMethod" or response.status_code != 201:
        return
    try:
        _CREATED_METHODS.append(response.json()["method_id"])
    except (ValueError, KeyError, TypeError):
        return
    if len(_CREATED_METHODS) >= _METHODS_KEPT:
        _forget_created_methods()
