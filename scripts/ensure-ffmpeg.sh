#!/usr/bin/env sh
# Install ffmpeg (and ffprobe) where it is missing: the simulated cameras render their clips
# with it, and the daemon transcodes proxies with it.
set -eu
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    exit 0
fi
echo "ffmpeg not found: installing it" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg
elif command -v brew >/dev/null 2>&1; then
    brew install ffmpeg
else
    echo "cannot install ffmpeg automatically: install it with your package manager" >&2
    exit 1
fi
