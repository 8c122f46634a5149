#!/usr/bin/env bash
# Installs Python tools into a project-local venv, once per requirements change.
# Default: the template checkers (cfn-lint, SAM CLI) into .local/tools. Otherwise: setup-tools.sh VENV REQUIREMENTS BIN
# (e.g. `.local/openapi infra/requirements-openapi.txt schemathesis`, the OpenAPI property test's generator).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/${1:-.local/tools}"
req="$root/${2:-infra/requirements-tools.txt}"
bin="${3:-sam}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/$bin" ]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required (3.9 or newer)" >&2; exit 1; }
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 venv module missing; installing python3-venv" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; else sudo apt-get install -y python3-venv; fi
fi
echo "installing $(basename "$req") into ${venv#"$root"/} (first run only)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --disable-pip-version-check -q -r "$req"
echo "$want" > "$stamp"
