#!/usr/bin/env sh
# Install PostgreSQL (server binaries, initdb, psql) where it is missing. The archive's tests
# use the server already running on 127.0.0.1:5432 if there is one, else start a private
# cluster of their own on a free port (hil/postgres.py); nothing here starts a system service.
set -eu
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
echo "PostgreSQL not found: installing it" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-client
elif command -v brew >/dev/null 2>&1; then
    brew install postgresql
else
    echo "cannot install PostgreSQL automatically: install it with your package manager" >&2
    exit 1
fi
