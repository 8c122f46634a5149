#!/usr/bin/env bash
# Runs a command with a private emulator (DynamoDB serialized, as in the local stack) and LOCAL_AWS_ENDPOINT
# pointing at it, for the adapter integration tests. The emulator is stopped when the command ends.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.local/venv/bin/python"
[ -x "$python" ] || { echo "no emulator venv: run target/debug/local-stack setup first" >&2; exit 1; }
log="$(mktemp -t moto-XXXXXX.log)"
coproc MOTO { exec "$python" "$root/infra/moto_launcher.py" --port 0 2>"$log"; }
moto_pid=$MOTO_PID
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT
read -r -t 60 line <&"${MOTO[0]}" || { echo "emulator did not start:" >&2; cat "$log" >&2; exit 1; }
port="$(sed -E 's/.*"port": *([0-9]+).*/\1/' <<<"$line")"
export LOCAL_AWS_ENDPOINT="http://127.0.0.1:$port"
echo "emulator for adapter tests on $LOCAL_AWS_ENDPOINT" >&2
"$@"
