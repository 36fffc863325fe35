#!/usr/bin/env sh
# Install the mosquitto broker (and mosquitto_passwd) where it is missing. Tests and the demo
# start their own private instances; nothing here starts or configures a system service.
set -eu
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
echo "mosquitto not found: installing it" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients
elif command -v brew >/dev/null 2>&1; then
    brew install mosquitto
else
    echo "cannot install mosquitto automatically: install it with your package manager" >&2
    exit 1
fi
