#!/usr/bin/env bash
# Reproducible benchmark: the direct engine socket, the Stockade gateway and two peer proxies
# (socat, and HAProxy configured like Tecnativa/docker-socket-proxy) side by side in one run.
#
#   sudo benches/run.sh            # full run (~6 minutes on 2 cores)
#   sudo benches/run.sh --quick    # smoke run
#   sudo benches/run.sh --only ping,connect,rps   # any `stockade bench` flags
#
# Starts `stockade up` in a scratch state directory (its own engine and bridge), imports a
# busybox-static image there, starts the peers in front of the same engine socket, runs
# `stockade bench`, and stops everything it started, by pid.
#
# The pull scenario: Debian's docker-registry holds a ~50 MB image of random data. The direct
# engine pulls it from 127.0.0.1:PORT (Go never proxies loopback); the gateway and the peers
# pull it from ADDR:PORT, an address on a dummy interface this script adds (removed at exit),
# which the engine reaches only through the egress filter `stockade up` gives it as its proxy.
# After the bench, the filter's log and both registries' request logs show who carried what.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "benches/run.sh: run as root (it starts dockerd)" >&2
    exit 3
fi
# The pull scenario is set up unless --only leaves it out.
want_pull=1
prev=""
for arg in "$@"; do
    only=""
    if [ "$prev" = --only ]; then only=$arg; fi
    case "$arg" in --only=*) only=${arg#--only=} ;; esac
    if [ -n "$only" ] && [[ ",$only," != *,pull,* ]]; then want_pull=0; fi
    prev=$arg
done

tools="dockerd busybox socat haproxy ip"
[ "$want_pull" = 1 ] && tools="$tools docker-registry jq curl ss"
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "benches/run.sh: $tool is missing (apt-get install docker.io busybox-static socat haproxy iproute2 docker-registry jq curl)" >&2; exit 3; }
done

cargo build --release --locked --bin stockade
bin="${CARGO_TARGET_DIR:-target}/release/stockade"
state=$(mktemp -d /tmp/stk-bench-XXXX)
chmod 711 "$state"
pids=()
up_pid=""
dummy=""
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$up_pid" ]; then
        kill -TERM "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
    fi
    if [ -n "$dummy" ]; then ip link del "$dummy" 2>/dev/null || true; fi
    rm -rf "$state"
}
trap cleanup EXIT

# Waits (at most 10 s) for a registry's /v2/ to answer 200.
registry_ready() {
    for _ in $(seq 1 100); do
        if curl -fsS -m 2 -o /dev/null "http://$1/v2/" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

up_flags=()
if [ "$want_pull" = 1 ]; then
    # A free 10.215.N.1/32 on a dummy interface of this script's own, and a free port on both
    # 127.0.0.1 and that address.
    pull_ip=""
    for n in $(seq 10 250); do
        if ! ip -o -4 addr show | grep -q "10.215.$n\."; then pull_ip="10.215.$n.1"; break; fi
    done
    [ -n "$pull_ip" ] || { echo "benches/run.sh: no free 10.215.N.1 address" >&2; exit 3; }
    # A dummy interface, or where the kernel has no dummy driver a veth pair (its peer goes
    # when it is deleted).
    dummy="stkb$$"
    dummy=${dummy:0:15}
    if ! ip link add "$dummy" type dummy 2>/dev/null; then
        ip link add "$dummy" type veth peer name "${dummy:0:13}p"
        ip link set "${dummy:0:13}p" up
    fi
    ip addr add "$pull_ip/32" dev "$dummy"
    ip link set "$dummy" up
    port=""
    for p in $(seq 5170 5269); do
        if ! ss -Hltn "sport = :$p" | grep -q .; then port=$p; break; fi
    done
    [ -n "$port" ] || { echo "benches/run.sh: no free port in 5170-5269" >&2; exit 3; }
    direct_registry="127.0.0.1:$port"
    proxied_registry="$pull_ip:$port"
    # Two registry processes on one storage directory: the same blobs under both addresses.
    mkdir -p "$state/registry/data"
    for which in direct proxied; do
        if [ "$which" = direct ]; then addr=$direct_registry; else addr=$proxied_registry; fi
        cat >"$state/registry/$which.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $state/registry/data
  delete:
    enabled: true
http:
  addr: $addr
YML
        docker-registry serve "$state/registry/$which.yml" >"$state/registry/$which.log" 2>&1 &
        pids+=($!)
        registry_ready "$addr" || { echo "benches/run.sh: docker-registry on $addr did not start:" >&2; tail -5 "$state/registry/$which.log" >&2; exit 3; }
    done
    # The built-in policy, with the bench registry allowed by both names and insecure (plain
    # HTTP) for the engine, and the engine's proxy direct: the egress filter is the only hop.
    options="{\"insecure-registries\": [\"$proxied_registry\"]}"
    jq --arg direct "$direct_registry" --arg proxied "$proxied_registry" --arg options "$options" '
        .registryAccess = {locked: true, allowedRegistries: ["docker.io", $direct, $proxied]}
        | .linuxVM = {dockerDaemonOptions: {locked: true, value: ($options | fromjson | tojson)}}
        | .proxy = {locked: true, mode: "manual", http: "", https: "", exclude: []}
    ' crates/policy/default-admin-settings.json >"$state/policy.json"
    chmod 644 "$state/policy.json"
    "$bin" policy check "$state/policy.json" >/dev/null
    up_flags+=(--policy "$state/policy.json")
fi

# A /24 no interface uses.
subnet=""
for n in $(seq 10 250); do
    if ! ip -o -4 addr show | grep -q "10.235.$n\."; then subnet="10.235.$n.1/24"; break; fi
done

"$bin" up --state-dir "$state/s" --bridge-subnet "$subnet" --network-pool 10.236.0.0/16 \
    "${up_flags[@]}" >"$state/up.out" 2>"$state/up.log" &
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

pull_flags=()
if [ "$want_pull" = 1 ]; then
    # The pull image: the busybox rootfs and 50 MB of random data (incompressible), pushed to
    # the registry and removed from the engine.
    fat="$state/fatfs"
    cp -a "$rootfs" "$fat"
    head -c 50000000 /dev/urandom >"$fat/random.bin"
    tar -C "$fat" -cf "$state/fat.tar" .
    rm -rf "$fat"
    image="$direct_registry/bench/fat:1"
    DOCKER_HOST="unix://$engine" docker import "$state/fat.tar" "$image" >/dev/null
    rm -f "$state/fat.tar"
    pull_id=$(DOCKER_HOST="unix://$engine" docker image inspect -f '{{.Id}}' "$image")
    DOCKER_HOST="unix://$engine" timeout 120 docker push -q "$image" >/dev/null
    DOCKER_HOST="unix://$engine" docker rmi -f "$pull_id" >/dev/null
    pull_flags=(--pull-direct "$image" --pull-proxied "$proxied_registry/bench/fat:1" --pull-id "$pull_id")
fi

# The gateway again, recording every decision in an audit log: its cost is the difference to the
# "stockade" column.
"$bin" serve --engine "unix://$engine" --listen "unix://$state/audited.sock" \
    --audit-log "$state/audit.log" "${up_flags[@]}" 2>/dev/null &
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
    --image stockade-bench/busybox:latest --gateway-pid "$up_pid" "${pull_flags[@]}" "$@" || status=$?
"$bin" audit verify "$state/audit.log" | tail -1
if [ "$want_pull" = 1 ] && [ "$status" = 0 ]; then
    # Who carried the pulls: the egress filter's decisions for the proxied name, and the blob
    # downloads each registry served (the direct one also served the push's checks).
    filtered=$(grep -c "engine egress.*destination=$proxied_registry allowed=true" "$state/up.log" || true)
    blobs() { grep -c 'GET /v2/bench/fat/blobs/sha256:[0-9a-f]* HTTP' "$state/registry/$1.log" || true; }
    echo "pull check: the egress filter let through $filtered connections to $proxied_registry; blob GETs served: $(blobs direct) on $direct_registry, $(blobs proxied) on $proxied_registry"
    if [ "$filtered" -eq 0 ]; then
        echo "benches/run.sh: the proxied pulls did not go through the egress filter" >&2
        status=1
    fi
fi
exit $status
