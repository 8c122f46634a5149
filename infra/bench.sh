#!/usr/bin/env bash
# `make bench`: every benchmark, printing numbers. Engine benchmarks run in-process; the HTTP benchmarks run
# against a local stack started here on free ports and stopped at the end. Numbers that pass through the local
# DynamoDB emulator measure the emulator as much as our code: each benchmark says which.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --workspace --bins
cargo build --profile bench-release -p search-bench -p inventory-bench -p flash-bench
target/debug/local-stack setup >/dev/null

echo "== search: 100,000 products, embedded engine"
target/bench-release/search-bench

echo "== inventory: reservations through the adapter (private emulator)"
infra/with-moto.sh target/bench-release/inventory-bench adapter

state="$(mktemp -d -t bench-stack-XXXXXX)"
target/debug/local-stack up --api-port 0 --aws-port 0 --state-dir "$state" >"$state/stdout" 2>"$state/stack.err" &
stack_pid=$!
trap 'kill -INT "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 240); do
  grep -q "local stack ready" "$state/stdout" 2>/dev/null && break
  kill -0 "$stack_pid" 2>/dev/null || { cat "$state/stack.err" >&2; exit 1; }
  sleep 0.5
done
grep -q "local stack ready" "$state/stdout" || { echo "local stack did not start" >&2; exit 1; }

echo "== inventory: reservations through the local HTTP API"
target/bench-release/inventory-bench http --state-dir "$state"

echo "== flash sale: buyers race for units through the local HTTP API, 1 shard vs N shards"
target/bench-release/flash-bench --state-dir "$state" --buyers "${FLASH_BUYERS:-10000}" --units "${FLASH_UNITS:-1000}"
