#!/usr/bin/env bash
# Installs the Docker clients that tests/clients.rs drives through the gateway, idempotently, on a
# Debian 12 machine (as root):
#   - docker-compose 1.29 (Debian's python package)
#   - a Python venv with docker-py and testcontainers-python, pinned
#   - the devcontainer CLI (npm @devcontainers/cli), pinned
# Everything but the Debian packages goes under $STOCKADE_TEST_CLIENTS (default
# /opt/stockade-test-clients): venv/ and node/. Only what is missing or at another version is
# installed, so a second run changes nothing.
set -euo pipefail

DOCKER_PY_VERSION=7.1.0
TESTCONTAINERS_VERSION=4.14.2
DEVCONTAINERS_CLI_VERSION=0.89.0

prefix="${STOCKADE_TEST_CLIENTS:-/opt/stockade-test-clients}"

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/install-test-clients.sh: run as root (it installs Debian packages): sudo $0" >&2
    exit 1
fi

# Debian packages. nodejs and npm only when there is no node or npm at all (machines often have
# node 20 and npm from elsewhere, which Debian's npm would conflict with).
packages=(docker-compose python3-venv ca-certificates)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
bash "$(dirname "$0")/apt-install-missing.sh" "${packages[@]}"

mkdir -p "$prefix"

# Python clients, in a venv of Debian's own python3 (not whatever python3 comes first in PATH).
venv="$prefix/venv"
python=/usr/bin/python3
if [ ! -x "$venv/bin/python" ]; then
    echo "install-test-clients: creating $venv" >&2
    "$python" -m venv "$venv"
fi
installed_version() {
    "$venv/bin/python" -c 'import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass' "$1"
}
if [ "$(installed_version docker)" != "$DOCKER_PY_VERSION" ] ||
    [ "$(installed_version testcontainers)" != "$TESTCONTAINERS_VERSION" ]; then
    echo "install-test-clients: installing docker==$DOCKER_PY_VERSION testcontainers==$TESTCONTAINERS_VERSION" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "docker==$DOCKER_PY_VERSION" "testcontainers==$TESTCONTAINERS_VERSION"
fi

# The devcontainer CLI, in a prefix of its own.
node_prefix="$prefix/node"
devcontainer="$node_prefix/node_modules/.bin/devcontainer"
current=""
if [ -f "$node_prefix/node_modules/@devcontainers/cli/package.json" ]; then
    current="$(node -p 'require(process.argv[1]).version' \
        "$node_prefix/node_modules/@devcontainers/cli/package.json")"
fi
if [ "$current" != "$DEVCONTAINERS_CLI_VERSION" ] || [ ! -x "$devcontainer" ]; then
    echo "install-test-clients: installing @devcontainers/cli@$DEVCONTAINERS_CLI_VERSION" >&2
    mkdir -p "$node_prefix"
    npm install --prefix "$node_prefix" --no-audit --no-fund --loglevel=error \
        "@devcontainers/cli@$DEVCONTAINERS_CLI_VERSION"
fi

echo "install-test-clients: docker-compose $(docker-compose version --short)," \
    "docker-py $(installed_version docker), testcontainers $(installed_version testcontainers)," \
    "devcontainer $("$devcontainer" --version) in $prefix" >&2
