#!/usr/bin/env sh
# Install Debian's chromium where it is missing: the web monitor's test drives it headless
# through Playwright's Python package (`executable_path="/usr/bin/chromium"`); Playwright's own
# browser download is not used.
set -eu
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    exit 0
fi
echo "chromium not found: installing it" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
else
    echo "cannot install chromium automatically: install it with your package manager" >&2
    exit 1
fi
