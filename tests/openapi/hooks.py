"""Generation rules for the OpenAPI property test that a JSON Schema cannot state.

Each rule below is one the document states in prose (a reference to something that must exist, an order between
two fields, a rule across the items of a list). The generator is told it here, so that a request it calls valid
is one the document promises to accept. Nothing else is changed, and negative cases are left alone.
"""

import hashlib
import hmac
import json
import os
import time
from datetime import datetime, timedelta, timezone

import schemathesis

# A demo category with no attribute definitions of its own or above it: any attribute names are accepted there.
OPEN_CATEGORY = "cat_books"


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


def _flash_sale_body(body):
    """Flash sales: a SKU of the seller's with stock, and `ends_at` after `starts_at`."""
    if not isinstance(body, dict):
        return
    body["sku"] = os.environ.get("OPENAPI_SELLER_SKU", body.get("sku"))
    body.pop("warehouse_id", None)
    start = datetime.now(timezone.utc) + timedelta(hours=1)
    body["starts_at"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["ends_at"] = (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sign_webhook(case):
    """The payment webhook: signed with the endpoint secret, as the provider signs it."""
    secret = os.environ.get("PAYMENT_WEBHOOK_SECRET")
    if not secret:
        return
    payload = json.dumps(case.body if case.body is not None else {}, separators=(",", ":"))
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    case.body = json.loads(payload)
    case.headers = dict(case.headers or {})
    case.headers["Stripe-Signature"] = f"t={stamp},v1={digest}"


@schemathesis.hook
def map_case(context, case):
    query = case.query
    if isinstance(query, dict):
        # `cursor` is only ever a `next_cursor` the same listing issued; any other string is 400 by design.
        query.pop("cursor", None)
    if not _positive(case):
        return case
    operation = _operation_id(case)
    if operation == "createProduct":
        _product_body(case.body, create=True)
    elif operation == "updateProduct":
        _product_body(case.body, create=False)
    elif operation == "createCategory" and isinstance(case.body, dict) and "parent_id" in case.body:
        case.body["parent_id"] = OPEN_CATEGORY
    elif operation == "createFlashSale":
        _flash_sale_body(case.body)
    elif operation == "paymentWebhook":
        _sign_webhook(case)
    return case
