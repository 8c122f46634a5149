#!/usr/bin/env bash
# `make bench`: every benchmark, printing numbers. Engine benchmarks run in-process; the HTTP benchmarks run
# against a local stack started here on free ports and stopped at the end. Numbers that pass through the local
# DynamoDB emulator measure the emulator as much as our code: each benchmark says which.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --workspace --bins
cargo build --profile bench-release -p search-bench -p inventory-bench -p flash-bench -p pricing-bench
target/debug/local-stack setup >/dev/null

echo "== pricing: 20-line carts taxed and shipped, in process"
target/bench-release/pricing-bench

echo "== search: 100,000 products, embedded engine"
target/bench-release/search-bench

echo "== inventory: reservations through the adapter (private emulator)"
infra/with-moto.sh target/bench-release/inventory-bench adapter

echo "== lambda: each function's arm64 binary size and its init duration (infra/lambda-size-bench.sh)"
infra/lambda-size-bench.sh

state="$(mktemp -d -t bench-stack-XXXXXX)"
target/debug/local-stack up --api-port 0 --aws-port 0 --state-dir "$state" >"$state/stdout" 2>"$state/stack.err" &
stack_pid=$!
trap 'kill -INT "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 1200); do  # ready waits until the seed is indexed: up to 10 minutes on a busy machine
  grep -q "local stack ready" "$state/stdout" 2>/dev/null && break
  kill -0 "$stack_pid" 2>/dev/null || { cat "$state/stack.err" >&2; exit 1; }
  sleep 0.5
done
grep -q "local stack ready" "$state/stdout" || { echo "local stack did not start" >&2; exit 1; }

echo "== pricing: quotes through the local HTTP API (the emulator's latency included)"
target/bench-release/pricing-bench quote --state-dir "$state"

echo "== catalog: a product read with and without a matching ETag through the local HTTP API (the emulator's latency included)"
target/bench-release/pricing-bench cached-reads --state-dir "$state"

echo "== promotions: write units per order, and the preview through the local HTTP API"
target/bench-release/pricing-bench promotions --state-dir "$state"

echo "== inventory: reservations through the local HTTP API"
target/bench-release/inventory-bench http --state-dir "$state"

echo "== flash sale: buyers race for units through the local HTTP API, 1 shard vs N shards"
target/bench-release/flash-bench --state-dir "$state" --buyers "${FLASH_BUYERS:-10000}" --units "${FLASH_UNITS:-1000}"

echo "== checkout: \$ per 1M orders"
# Ten confirmed checkouts on a stack of their own, the checkout path's functions optimized (bench-release), the
# rest from target/debug. Lambda GB-s come from the stack's REPORT lines (billed duration x configured memory);
# those durations include the emulator's DynamoDB latency, so the Lambda figures are an upper bound.
saga=(checkout checkout-reserve-stock checkout-authorize-payment checkout-confirm-order checkout-release-stock
  checkout-void-payment checkout-fail-order get-order notify-order-events)
cargo build --profile bench-release $(printf -- '-p %s ' "${saga[@]}")
bins="$(mktemp -d -t checkout-bins-XXXXXX)"
for f in target/debug/*; do [ -f "$f" ] && [ -x "$f" ] && ln -s "$root/$f" "$bins/"; done
for f in "${saga[@]}"; do ln -sf "$root/target/bench-release/$f" "$bins/$f"; done
E2E_BIN_DIR="$bins" infra/with-moto.sh cargo test -p system-tests --test e2e -- --ignored cost_per_million_orders \
  --nocapture 2>&1 | sed -n '/^checkout cost/,/total (Express)/p'
rm -rf "$bins"
