#!/usr/bin/env bash
# Sends requests generated from docs/openapi.yaml to a running stack and checks the answers against the document:
# no 5xx, every status documented, and no schema-valid request refused as malformed (400) or invalid (422).
# Usage: API_URL=http://127.0.0.1:3000 SHOPPER_TOKEN=.. SELLER_TOKEN=.. ADMIN_TOKEN=.. infra/openapi-check.sh [schemathesis run options]
# Optional: OPENAPI_OPEN_CATEGORY, OPENAPI_SELLER_SKU, OPENAPI_SELLER_CURRENCY, PAYMENT_WEBHOOK_SECRET (tests/openapi/hooks.py).
# Installs schemathesis into .local/openapi on first use. `make test` runs it through tests/tests/openapi.rs, which
# starts a stack of its own and passes all of the above; `OPENAPI_SEED=random cargo test --workspace --test openapi`
# explores beyond the fixed seed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/infra/setup-tools.sh" .local/openapi infra/requirements-openapi.txt schemathesis
venv="$root/.local/openapi"
: "${API_URL:?set API_URL to the API of a running stack}"
: "${SHOPPER_TOKEN:?}" "${SELLER_TOKEN:?}" "${ADMIN_TOKEN:?}"
export PYTHONPATH="$root/tests/openapi${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=hooks
exec "$venv/bin/schemathesis" --no-color --config-file "$root/tests/openapi/schemathesis.toml" \
  run "$root/docs/openapi.yaml" --url "$API_URL" "$@"
