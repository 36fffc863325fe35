#!/usr/bin/env sh
# Install xxhsum (Debian's xxhash package) where it is missing: bench.dailies measures the
# offload against `cp` + `xxhsum` on the same files. Only the benchmarks need it.
set -eu
if command -v xxhsum >/dev/null 2>&1; then
    exit 0
fi
echo "xxhsum not found: installing it" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xxhash
elif command -v brew >/dev/null 2>&1; then
    brew install xxhash
else
    echo "cannot install xxhsum automatically: install xxhash with your package manager" >&2
    exit 1
fi
