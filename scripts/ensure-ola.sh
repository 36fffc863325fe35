#!/usr/bin/env sh
# Install OLA (the Open Lighting Architecture: olad, ola_rdm_discover, ...) where it is missing.
# The test suite runs its own olad against the simulated Enttec widget, as the `olad` user the
# package creates, in a network namespace of its own; nothing here starts a system service.
# The olad service the package may enable is left as the package installs it.
set -eu
if command -v olad >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    exit 0
fi
echo "olad (or ip, to bring up its namespace's loopback) not found: installing OLA" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ola iproute2
else
    echo "cannot install OLA automatically: install the 'ola' package (its conformance test is skipped without it)" >&2
    exit 0
fi
