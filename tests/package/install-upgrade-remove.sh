#!/usr/bin/env bash
# The Debian package on a throw-away Debian 12 with systemd as PID 1: a debootstrap root booted
# with systemd-nspawn (private network, so nothing it starts touches the host's interfaces),
# where Debian's docker.io is installed and running, as on a real host. Then:
#   install  - the stock engine is stopped and masked, stockade-engine and stockade-gateway run,
#              /var/run/docker.sock is the gateway's (root:docker 0660), a docker-group user is
#              served and held to the policy, the engine socket is root's only, doctor is green;
#   weaken   - doctor goes red (exit 3) for a user added to a group that opens the engine socket,
#              the users' socket opened to everyone, an unmasked docker.socket, and a second dockerd with TCP and no user namespaces;
#              and green again once each is undone;
#   upgrade  - a newer version keeps the admin's edited policy (conffile), restarts the gateway,
#              leaves the engine and its containers running;
#   remove   - docker.service/docker.socket are back as they were (enabled, running), with the
#              stock engine's images and containers; purge removes /etc/stockade and
#              /var/lib/stockade and keeps the audit logs.
#
#   tests/package/install-upgrade-remove.sh PACKAGE.deb WORK_DIR
#
# The debootstrap root is cached in $STOCKADE_TEST_CACHE (default /var/cache/stockade-test);
# the first run downloads it from the Debian mirror ($STOCKADE_DEBIAN_MIRROR). Needs root,
# debootstrap and systemd-container. Everything it starts is stopped by pid at exit.
set -euo pipefail

deb=$(realpath "$1")
work=$(realpath "$2")
cache=${STOCKADE_TEST_CACHE:-/var/cache/stockade-test}
mirror=${STOCKADE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base="$cache/bookworm-systemd-docker-v1.tar"
root="$work/root"
nspawn=""
leader=""

log() { echo "package-test: $*"; }
fail() {
    echo "package-test: FAIL: $*" >&2
    if [ -n "$leader" ]; then
        echo "--- journal of the stockade units (last 60 lines) ---" >&2
        inside journalctl -u stockade-engine -u stockade-gateway --no-pager -n 60 >&2 2>/dev/null || true
    fi
    exit 1
}
inside() { nsenter -t "$leader" -a -- "$@"; }
# inside_sh 'shell command' - a command line in the booted system, with a bounded run time.
inside_sh() { timeout 120 nsenter -t "$leader" -a -- /bin/sh -c "$1"; }

cleanup() {
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        kill -TERM "$nspawn" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$nspawn" 2>/dev/null || true
        wait "$nspawn" 2>/dev/null || true
    fi
    if [ "${STOCKADE_KEEP_TEST_ROOT:-0}" != 1 ]; then
        rm -rf "$root"
    fi
}
trap cleanup EXIT

for tool in debootstrap systemd-nspawn nsenter dpkg-deb; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install debootstrap systemd-container util-linux dpkg)"
done

# --- the throw-away root ---------------------------------------------------------------------
if [ ! -s "$base" ]; then
    log "building the Debian 12 root with systemd and docker.io (once; cached in $base)"
    mkdir -p "$cache"
    rm -rf "$work/base"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,docker.io,iproute2,nftables,busybox-static,procps,passwd \
        bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap from $mirror failed"; }
    tar -C "$work/base" -cf "$base.tmp" .
    mv "$base.tmp" "$base"
    rm -rf "$work/base"
fi
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
echo stockade-pkg-test >"$root/etc/hostname"
cp "$deb" "$root/var/tmp/stockade.deb"

# --- boot it -----------------------------------------------------------------------------------
# dockerd needs the cgroup hierarchies writable and the keyring syscalls inside.
systemd-nspawn --register=no --keep-unit --quiet -D "$root" --private-network \
    --capability=all --system-call-filter="add_key keyctl bpf" --bind=/sys/fs/cgroup \
    --boot >"$work/console.log" 2>&1 &
nspawn=$!
# The container's PID 1 is the child of systemd-nspawn that runs systemd; nspawn forks helper
# children first, which do not last, so wait for the one that is systemd.
for _ in $(seq 1 300); do
    leader=""
    for child in $(pgrep -P "$nspawn" || true); do
        if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then leader=$child; break; fi
    done
    [ -n "$leader" ] && break
    kill -0 "$nspawn" 2>/dev/null || break
    sleep 0.2
done
[ -n "$leader" ] || { tail -20 "$work/console.log" >&2; fail "systemd-nspawn did not start systemd in the container"; }
state=""
for _ in $(seq 1 360); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
done
case "$state" in
    running|degraded) ;;
    *) tail -20 "$work/console.log" >&2; fail "the container's systemd did not finish booting in 3 minutes (state: ${state:-none})" ;;
esac
log "booted (systemd: $state)"

wait_active() {
    local unit=$1
    for _ in $(seq 1 240); do
        inside systemctl is-active --quiet "$unit" && return 0
        sleep 0.5
    done
    fail "$unit did not become active: $(inside systemctl status "$unit" --no-pager 2>&1 | head -20)"
}

# --- the stock engine as it was before Stockade ----------------------------------------------
wait_active docker.service
inside_sh 'mkdir -p /tmp/img/bin /tmp/img/tmp && cp /bin/busybox /tmp/img/bin/ &&
    for a in sh echo id cat sleep true; do ln -sf busybox /tmp/img/bin/$a; done' \
    || fail "cannot lay out the test image"
inside_sh 'tar -C /tmp/img -c . | docker import - stock/keep:1 >/dev/null && docker create --name keepme stock/keep:1 true >/dev/null' \
    || fail "the stock engine cannot import and create"
stock_image=$(inside docker image inspect -f '{{.Id}}' stock/keep:1)
log "stock engine has image $stock_image and container keepme"

# --- install ---------------------------------------------------------------------------------
inside_sh 'dpkg -i /var/tmp/stockade.deb' >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "dpkg -i failed"; }
wait_active stockade-engine.service
wait_active stockade-gateway.service
for unit in docker.service docker.socket; do
    [ "$(inside systemctl is-enabled "$unit" 2>/dev/null || true)" = masked ] || fail "$unit is not masked after the install"
    inside systemctl is-active --quiet "$unit" && fail "$unit still runs after the install"
done
[ "$(inside stat -c '%U:%G %a' /run/docker.sock)" = "root:docker 660" ] \
    || fail "/run/docker.sock is $(inside stat -c '%U:%G %a' /run/docker.sock), not root:docker 660"
engine_mode=$(inside stat -c '%U:%G %a' /run/stockade/engine.sock)
case "$engine_mode" in "root:root 600"|"root:root 660") ;; *) fail "the engine socket is $engine_mode" ;; esac
inside_sh 'docker info --format "{{json .SecurityOptions}}"' | grep -q userns \
    || fail "the engine behind /var/run/docker.sock does not use user namespaces"
doctor=$(inside_sh 'stockade doctor' 2>&1) || { echo "$doctor" >&2; fail "stockade doctor is not green on a fresh install"; }
echo "$doctor" | grep -q "/run/docker.sock is the Stockade gateway's" || { echo "$doctor" >&2; fail "doctor did not see the gateway on /run/docker.sock"; }
echo "$doctor" | grep -q "docker.service is masked" || { echo "$doctor" >&2; fail "doctor did not check docker.service"; }
log "installed: units active, stock engine masked, doctor green"

# The admin seeds an image through the engine socket (docker load/import are blocked for users).
inside_sh 'tar -C /tmp/img -c . | docker -H unix:///run/stockade/engine.sock import - stk/busybox:1 >/dev/null' \
    || fail "root cannot import through the engine socket"
inside_sh 'useradd -m -G docker alice' || fail "useradd"
out=$(inside_sh 'su alice -c "docker run --rm stk/busybox:1 echo hello-from-alice"' 2>&1) || fail "alice cannot run a container: $out"
[ "$out" = hello-from-alice ] || fail "alice's container printed: $out"
out=$(inside_sh 'su alice -c "docker run --privileged --name priv stk/busybox:1 true"' 2>&1) && fail "a privileged run was allowed"
echo "$out" | grep -q "enhanced container isolation" || fail "the privileged run was refused without the ECI message: $out"
out=$(inside_sh 'su alice -c "docker run --rm -v /var/run/docker.sock:/s stk/busybox:1 true"' 2>&1) && fail "a socket mount was allowed"
[ -z "$(inside docker -H unix:///run/stockade/engine.sock ps -aq --filter name=priv)" ] || fail "a container named priv exists on the engine"
out=$(inside_sh 'su alice -c "docker -H unix:///run/stockade/engine.sock version"' 2>&1) && fail "alice reached the engine socket: $out"
inside_sh 'stockade audit verify /var/log/stockade/audit.log' >/dev/null 2>&1 || fail "the gateway's audit log does not verify"
inside grep -q '"decision":"deny"' /var/log/stockade/audit.log || fail "the audit log has no denial"
log "alice is served through the gateway and held to the policy; the engine socket is root's"

# --- weaken the host: doctor must go red, then green again -----------------------------------
expect_red() {
    local why=$1 pattern=$2 out
    if out=$(inside_sh 'stockade doctor' 2>&1); then
        echo "$out" >&2
        fail "doctor stayed green after: $why"
    fi
    echo "$out" | grep -q "$pattern" || { echo "$out" >&2; fail "doctor did not say '$pattern' after: $why"; }
}
expect_green() {
    local why=$1 out
    out=$(inside_sh 'stockade doctor' 2>&1) || { echo "$out" >&2; fail "doctor stayed red after undoing: $why"; }
}
inside_sh 'gpasswd -a alice root >/dev/null'
expect_red "alice added to group root (the engine socket's group)" "group root (alice)"
inside_sh 'gpasswd -d alice root >/dev/null'
expect_green "alice added to group root"
inside_sh 'chmod 0666 /run/docker.sock'
expect_red "the users' socket opened to everyone" "users outside the docker group"
inside_sh 'chmod 0660 /run/docker.sock'
expect_green "the users' socket opened to everyone"
inside_sh 'systemctl unmask docker.socket >/dev/null 2>&1'
expect_red "docker.socket unmasked" "docker.socket is not masked"
inside_sh 'systemctl mask docker.socket >/dev/null 2>&1'
expect_green "docker.socket unmasked"
inside_sh 'mkdir -p /var/lib/rogue && (dockerd -H tcp://127.0.0.1:2375 -H unix:///run/rogue.sock --data-root /var/lib/rogue --exec-root /run/rogue --pidfile /run/rogue.pid --bridge=none --iptables=false >/var/log/rogue.log 2>&1 &)'
for _ in $(seq 1 60); do inside test -S /run/rogue.sock && break; sleep 0.5; done
inside test -S /run/rogue.sock || fail "the second dockerd did not start: $(inside tail -5 /var/log/rogue.log)"
expect_red "a second dockerd" "is not Stockade's managed engine"
expect_red "a dockerd on TCP" "listens on TCP port 2375"
expect_red "a dockerd without user namespaces" "without user namespaces"
rogue=$(inside cat /run/rogue.pid)
inside kill "$rogue"
for _ in $(seq 1 60); do inside kill -0 "$rogue" 2>/dev/null || break; sleep 0.5; done
expect_green "a second dockerd"
log "doctor goes red for each weakening and green once it is undone"

# --- upgrade ---------------------------------------------------------------------------------
inside_sh 'su alice -c "docker run -d --name longrun stk/busybox:1 sleep 600"' >/dev/null || fail "cannot start a long-running container"
inside_sh "sed -i '1s/^{\$/{\\n  \"analyticsEnabled\": {\"locked\": true, \"value\": false},/' /etc/stockade/admin-settings.json"
inside grep -q analyticsEnabled /etc/stockade/admin-settings.json || fail "could not edit the policy"
inside_sh 'stockade policy check /etc/stockade/admin-settings.json' >/dev/null || fail "the edited policy does not check"
engine_pid=$(inside cat /var/lib/stockade/dockerd.pid)
gateway_pid=$(inside systemctl show -p MainPID --value stockade-gateway)
rm -rf "$work/repack"
dpkg-deb -R "$deb" "$work/repack"
sed -i 's/^Version: .*/&+test1/' "$work/repack/DEBIAN/control"
new_version=$(sed -n 's/^Version: //p' "$work/repack/DEBIAN/control")
dpkg-deb -b "$work/repack" "$root/var/tmp/stockade-new.deb" >/dev/null
inside_sh 'dpkg -i --force-confold --force-confdef /var/tmp/stockade-new.deb' >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log" >&2; fail "the upgrade failed"; }
[ "$(inside dpkg-query -W -f '${Version}' stockade)" = "$new_version" ] || fail "the upgrade did not install $new_version"
inside grep -q analyticsEnabled /etc/stockade/admin-settings.json || fail "the upgrade replaced the admin's policy"
wait_active stockade-gateway.service
[ "$(inside systemctl show -p MainPID --value stockade-gateway)" != "$gateway_pid" ] || fail "the gateway was not restarted by the upgrade"
[ "$(inside cat /var/lib/stockade/dockerd.pid)" = "$engine_pid" ] || fail "the upgrade restarted the engine"
[ "$(inside_sh 'docker inspect -f "{{.State.Running}}" longrun')" = true ] || fail "the upgrade stopped a running container"
log "upgraded to $new_version: policy kept, gateway restarted, engine and containers untouched"

# --- remove, then purge ----------------------------------------------------------------------
inside_sh 'dpkg -r stockade' >"$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "dpkg -r failed"; }
inside kill -0 "$engine_pid" 2>/dev/null && fail "the managed engine outlived the removal"
for unit in docker.service docker.socket; do
    [ "$(inside systemctl is-enabled "$unit" 2>/dev/null || true)" = enabled ] || fail "$unit is not enabled again after the removal"
done
wait_active docker.service
[ "$(inside docker image inspect -f '{{.Id}}' stock/keep:1)" = "$stock_image" ] || fail "the stock engine lost its image"
[ -n "$(inside docker ps -aq --filter name=keepme)" ] || fail "the stock engine lost its container"
inside test -e /etc/stockade/admin-settings.json || fail "remove (not purge) deleted the policy"
inside_sh 'dpkg -P stockade' >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg -P failed"; }
inside test -e /etc/stockade/admin-settings.json && fail "purge left /etc/stockade/admin-settings.json"
inside test -e /var/lib/stockade && fail "purge left /var/lib/stockade"
inside test -s /var/log/stockade/audit.log || fail "purge removed the audit log"
log "removed: the stock engine is back with its image and container; purge kept only the audit logs"
log "PASS"
