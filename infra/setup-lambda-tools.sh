#!/usr/bin/env bash
# Installs what building the functions for Lambda needs: cargo-lambda and Zig (pinned in
# infra/requirements-lambda.txt) into .local/lambda, and the Rust target for arm64 (Graviton) when missing.
# Put .local/lambda/bin on PATH to use them (`sam build`'s rust-cargolambda builder runs `cargo lambda`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/infra/setup-tools.sh" .local/lambda infra/requirements-lambda.txt cargo-lambda
target=aarch64-unknown-linux-gnu
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "adding the Rust target $target (first run only)" >&2
  rustup target add "$target"
fi
