#!/usr/bin/env sh
# Install the system packages Cupola runs against where they are missing, in one go:
#   mosquitto   tests and the demo start private brokers of their own
#   ffmpeg      the simulated cameras render their clips; the daemon transcodes proxies
#   PostgreSQL  the archive's tests (the running server, else a private cluster on a free port)
#   chromium    the web monitor's browser test, driven headless through Playwright
#   OLA         the RDM conformance test runs its own olad (and `ip` for its namespace)
# `ensure-system-packages.sh bench` also installs xxhsum, which only bench.dailies uses.
# Nothing here starts or configures a system service.
set -eu
apt_packages=""
brew_packages=""
want() {  # want CHECK APT_PACKAGES [BREW_PACKAGES]
    if ! sh -c "$1" >/dev/null 2>&1; then
        apt_packages="$apt_packages $2"
        brew_packages="$brew_packages ${3:-}"
    fi
}
want 'command -v mosquitto || [ -x /usr/sbin/mosquitto ]' "mosquitto mosquitto-clients" mosquitto
want 'command -v ffmpeg && command -v ffprobe' ffmpeg ffmpeg
want 'command -v initdb || ls /usr/lib/postgresql/*/bin/initdb' "postgresql postgresql-client" postgresql
want 'command -v chromium || [ -x /usr/bin/chromium ]' chromium
want 'command -v olad && command -v ip' "ola iproute2"
if [ "${1:-}" = bench ]; then
    want 'command -v xxhsum' xxhash xxhash
fi
if [ -z "$apt_packages" ]; then
    exit 0
fi
echo "installing what is missing:$apt_packages" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $apt_packages
elif command -v brew >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    brew install $brew_packages
    echo "not from brew:$apt_packages (chromium and OLA: their tests are skipped)" >&2
else
    echo "cannot install$apt_packages automatically: install them with your package manager" >&2
    exit 1
fi
