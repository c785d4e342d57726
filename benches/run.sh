#!/usr/bin/env bash
# Reproducible benchmark: the direct engine socket, the Stockade gateway and two peer proxies
# (socat, and HAProxy configured like Tecnativa/docker-socket-proxy) side by side in one run.
#
#   sudo benches/run.sh            # full run (~5 minutes on 2 cores)
#   sudo benches/run.sh --quick    # smoke run
#
# Starts `stockade up` in a scratch state directory (its own engine and bridge), imports a
# busybox-static image there, starts the peers in front of the same engine socket, runs
# `stockade bench`, and stops everything it started, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "benches/run.sh: run as root (it starts dockerd)" >&2
    exit 3
fi
for tool in dockerd busybox socat haproxy ip; do
    command -v "$tool" >/dev/null || { echo "benches/run.sh: $tool is missing (apt-get install docker.io busybox-static socat haproxy iproute2)" >&2; exit 3; }
done

cargo build --release --locked --bin stockade
bin=target/release/stockade
state=$(mktemp -d /tmp/stk-bench-XXXX)
chmod 711 "$state"
pids=()
up_pid=""
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$up_pid" ]; then
        kill -TERM "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT

# A /24 no interface uses.
subnet=""
for n in $(seq 10 250); do
    if ! ip -o -4 addr show | grep -q "10.235.$n\."; then subnet="10.235.$n.1/24"; break; fi
done

"$bin" up --state-dir "$state/s" --bridge-subnet "$subnet" --network-pool 10.236.0.0/16 \
    >"$state/up.out" 2>"$state/up.log" &
up_pid=$!
for _ in $(seq 1 600); do
    grep -q "export DOCKER_HOST" "$state/up.out" 2>/dev/null && break
    kill -0 "$up_pid" 2>/dev/null || { cat "$state/up.log" >&2; exit 3; }
    sleep 0.1
done
grep -q "export DOCKER_HOST" "$state/up.out" || { echo "stockade up did not become ready" >&2; exit 3; }
engine="$state/s/engine.sock"
gateway="$state/s/docker.sock"

# Test image from busybox-static.
rootfs="$state/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/tmp"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in sh cat true head yes tr sleep; do ln -s busybox "$rootfs/bin/$applet"; done
tar -C "$rootfs" -cf "$state/rootfs.tar" .
DOCKER_HOST="unix://$engine" docker import -c 'CMD ["/bin/sh"]' "$state/rootfs.tar" stockade-bench/busybox:latest >/dev/null

# The gateway again, recording every decision in an audit log: its cost is the difference to the
# "stockade" column.
"$bin" serve --engine "unix://$engine" --listen "unix://$state/audited.sock" \
    --audit-log "$state/audit.log" 2>/dev/null &
pids+=($!)
socat "UNIX-LISTEN:$state/socat.sock,fork,backlog=1024" "UNIX-CONNECT:$engine" 2>/dev/null &
pids+=($!)
cat >"$state/haproxy.cfg" <<CFG
global
    maxconn 4000
defaults
    mode http
    timeout connect 10s
    timeout client 10m
    timeout server 10m
    timeout tunnel 1h
frontend docker
    bind unix@$state/haproxy.sock mode 660
    http-request deny unless { path,url_dec -m reg -i ^(/v[\d\.]+)?/(_ping|version|info|events|containers|images|exec|build|volumes|networks|system|session|auth|commit) }
    default_backend engine
backend engine
    server engine unix@$engine
CFG
haproxy -f "$state/haproxy.cfg" -db &
pids+=($!)
for _ in $(seq 1 50); do
    [ -S "$state/socat.sock" ] && [ -S "$state/haproxy.sock" ] && [ -S "$state/audited.sock" ] && break
    sleep 0.1
done

status=0
"$bin" bench --direct "unix://$engine" --gateway "unix://$gateway" \
    --peer "audited=unix://$state/audited.sock" \
    --peer "socat=unix://$state/socat.sock" --peer "haproxy=unix://$state/haproxy.sock" \
    --image stockade-bench/busybox:latest --gateway-pid "$up_pid" "$@" || status=$?
"$bin" audit verify "$state/audit.log" | tail -1
exit $status
