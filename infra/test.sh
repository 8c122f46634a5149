#!/usr/bin/env bash
# `make unit`: every test of the workspace, as `cargo test --workspace` would run them, in two lanes at once so
# that the two long suites overlap on a 2-core machine: the end-to-end suite (tests/tests/e2e, a local stack of
# its own) in one lane; in the other the OpenAPI property test (a stack of its own) and then every other test
# binary, against a private emulator (infra/with-moto.sh) for the adapter tests. Each binary runs from its
# package's directory, as cargo runs it. Each lane's output is printed whole when it ends; the run fails if any
# binary fails. Extra arguments go to every test binary (e.g. `--nocapture`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"
# The lanes' logs stay in target/test-logs/ for a look after the run.
work="${CARGO_TARGET_DIR:-$root/target}/test-logs"
rm -rf "$work" && mkdir -p "$work"

"$cargo" test --workspace --no-run --message-format=json-render-diagnostics >"$work/build.json"
"$cargo" test --workspace --doc

# name <tab> package dir <tab> executable, for every test harness built.
python3 - "$work/build.json" >"$work/plan.tsv" <<'PY'
import json, os, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m.get("profile", {}).get("test"):
        continue
    print(m["target"]["name"], os.path.dirname(m["manifest_path"]), m["executable"], sep="\t")
PY

run_binaries() {  # reads "name dir exe" lines; runs each; exits non-zero if any failed
  local failed=0 name dir exe
  while IFS=$'\t' read -r name dir exe; do
    echo "     Running $name (${exe#"$root"/})"
    (cd "$dir" && "$exe" "$@") </dev/null || { failed=1; echo "FAILED: $name"; }
  done
  return "$failed"
}
export -f run_binaries
export root

grep -P '^e2e\t' "$work/plan.tsv" >"$work/lane1.tsv" || true
{ grep -P '^openapi\t' "$work/plan.tsv" || true; grep -vP '^(e2e|openapi)\t' "$work/plan.tsv" || true; } >"$work/lane2.tsv"
echo "test binaries: $(wc -l <"$work/plan.tsv") ($(wc -l <"$work/lane1.tsv") in the end-to-end lane)"

set +e
start=$(date +%s)
( set +e; run_binaries "$@" <"$work/lane1.tsv" >"$work/lane1.log" 2>&1; echo $? >"$work/lane1.rc" ) &
lane1=$!
( set +e; infra/with-moto.sh bash -c 'run_binaries "$@" <"$0"' "$work/lane2.tsv" "$@" >"$work/lane2.log" 2>&1
  echo $? >"$work/lane2.rc" ) &
lane2=$!
wait "$lane2"
echo "== lane 2 (OpenAPI property test, then every other binary): $(( $(date +%s) - start )) s"
cat "$work/lane2.log"
wait "$lane1"
echo "== lane 1 (end to end): $(( $(date +%s) - start )) s"
cat "$work/lane1.log"
rc1="$(cat "$work/lane1.rc" 2>/dev/null || echo 1)" rc2="$(cat "$work/lane2.rc" 2>/dev/null || echo 1)"
grep -h "^FAILED: " "$work/lane1.log" "$work/lane2.log"
echo "lane exit codes: end to end $rc1, the rest $rc2 (logs in $work)"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ]
