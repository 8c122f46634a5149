#!/usr/bin/env bash
# `make bench-lambda` (also a step of `make bench`): every function's deployed binary size and its init duration.
#   infra/lambda-size-bench.sh [function ...]     (default: every functions/<name>)
# 1. `cargo lambda build --release --arm64`, as `sam build` does, into target/lambda-arm64: the sizes.
# 2. `cargo build --release` of the same functions for this machine into target/lambda-native: an arm64 binary
#    does not run on x86_64, so init is measured on these, against a fake Runtime API (infra/coldstart-bench).
#    They keep their symbols (CARGO_PROFILE_RELEASE_STRIP=false) so that step 3 can read them.
# 3. The smallest and the largest function by crate (from the native build's symbols): what every function
#    carries, and what the largest adds.
# Both builds run under `nice -n 19`; each has its own target dir (LAMBDA_ARM64_TARGET_DIR and
# LAMBDA_NATIVE_TARGET_DIR override them). COLDSTART_RUNS sets the cold starts per function (default 5).
# LAMBDA_NATIVE_PROFILE=bench-release measures init on builds without LTO (minutes instead of hours for every
# function on a small machine; the same code, optimized for speed rather than size, so init differs a little).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/infra/setup-lambda-tools.sh"
export PATH="$root/.local/lambda/bin:$PATH"
arm64_dir="${LAMBDA_ARM64_TARGET_DIR:-$root/target/lambda-arm64}"
native_dir="${LAMBDA_NATIVE_TARGET_DIR:-$root/target/lambda-native}"
native_profile="${LAMBDA_NATIVE_PROFILE:-release}"
strip_var="CARGO_PROFILE_$(echo "$native_profile" | tr 'a-z-' 'A-Z_')_STRIP"

if [ "$#" -gt 0 ]; then functions=("$@"); else mapfile -t functions < <(ls functions); fi
packages=()
for f in "${functions[@]}"; do
  [ -f "functions/$f/Cargo.toml" ] || { echo "no function $f (functions/$f/Cargo.toml)" >&2; exit 1; }
  packages+=(-p "$f")
done

timed() {  # timed LABEL COMMAND...: runs it and says how long it took, per function
  local start=$SECONDS
  "${@:2}"
  local took=$((SECONDS - start))
  echo "$1: ${took} s for ${#functions[@]} functions ($((took / ${#functions[@]})) s each)" >&2
}
timed "arm64 release build" nice -n 19 env CARGO_TARGET_DIR="$arm64_dir" \
  cargo lambda build --release --arm64 "${packages[@]}"
native=(nice -n 19 env CARGO_TARGET_DIR="$native_dir" "$strip_var=false")
timed "native $native_profile build" "${native[@]}" cargo build --profile "$native_profile" -p coldstart-bench "${packages[@]}"
bins="$native_dir/$native_profile"

"$bins/coldstart-bench" --template template.yaml --size-dir "$arm64_dir/lambda" \
  --bin-dir "$bins" --runs "${COLDSTART_RUNS:-5}" "${functions[@]}"

# By crate, from the symbols of the native build (the arm64 binaries are stripped; their make-up is alike). A
# generic function counts for the crate that names it (`core::ptr::drop_in_place<hyper::...>` is core's).
by_size="$(for f in "${functions[@]}"; do
  [ -f "$arm64_dir/lambda/$f/bootstrap" ] && echo "$(stat -c %s "$arm64_dir/lambda/$f/bootstrap") $f"
done | sort -n)"
for f in $(echo "$by_size" | sed -n '1p;$p' | cut -d' ' -f2 | uniq); do
  echo
  echo "where $f's code and constants come from (MB, x86_64 $native_profile build, 15 largest):"
  nm -S --size-sort -C "$bins/$f" | python3 -c '
import collections, re, sys
sizes = collections.Counter()
for line in sys.stdin:
    parts = line.split(None, 3)
    if len(parts) < 4 or parts[2] not in "tTrR":
        continue
    name = parts[3]
    crate = re.match(r"^<*(?:&(?:mut )?)?(?:dyn )?([A-Za-z_]\w*)::", name) or re.match(r"^<[^:]*? as ([A-Za-z_]\w*)::", name)
    if crate:
        crate = crate.group(1)
    elif name.startswith("aws_lc_"):
        crate = "aws-lc (C)"
    elif name.startswith("ring_core"):
        crate = "ring (C)"
    else:
        crate = "[other C, assembly tables, unnamed constants]"
    sizes[crate] += int(parts[1], 16)
print(f"{sum(sizes.values()) / 1e6:6.2f}  total")
for crate, size in sizes.most_common(15):
    print(f"{size / 1e6:6.2f}  {crate}")
'
done
