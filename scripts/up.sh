#!/usr/bin/env bash
# Installs what Stockade needs on a fresh Debian 12 machine (only what is missing), builds it and
# runs `stockade up` in the foreground. Extra arguments go to `stockade up`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/up.sh: run as root (it installs packages and starts dockerd): sudo $0 $*" >&2
    exit 3
fi

packages=(docker.io iproute2 nftables busybox-static ca-certificates)
bash scripts/apt-install-missing.sh "${packages[@]}"
getent group docker >/dev/null || groupadd --system docker

if ! command -v cargo >/dev/null; then
    echo "scripts/up.sh: cargo is missing; install Rust (https://rustup.rs) and run this again" >&2
    exit 3
fi
cargo build --release --locked --bin stockade
exec target/release/stockade up "$@"
