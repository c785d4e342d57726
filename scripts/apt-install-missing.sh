#!/usr/bin/env bash
# Installs those of the Debian packages named on the command line that are not installed yet
# (one `apt-get update` and one `apt-get install`, and nothing at all when none is missing).
# Used by .ci/run, scripts/up.sh and scripts/install-test-clients.sh. Needs root.
set -euo pipefail
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
