#!/usr/bin/env bash
# Nightly-style fuzzing (not part of CI): each target for a bounded time, stable toolchain, no
# sanitizer. Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (default 300)
# Crashes are kept in fuzz/artifacts/<target>/; the exit status is non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-300}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The differential target needs the engine's own decoders built from Debian's Go sources.
oracle="$(mktemp -d)/go-oracle"
GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$(dirname "$oracle")/cache" \
    go build -o "$oracle" ../crates/engine-api/tests/go-oracle
export STOCKADE_GO_ORACLE="$oracle"
failed=0
for target in request_body go_parity route_and_query dockerfile archive policy image_reference http_stream; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    [ "$target" = go_parity ] && seeds=("seeds/request_body")
    echo "== $target (${seconds}s)"
    if ! cargo fuzz run -s none "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len=65536; then
        echo "!! $target failed; see fuzz/artifacts/$target/"
        failed=1
    fi
done
exit "$failed"
