#!/bin/sh
# Install the PostgreSQL server for the database tests, unless initdb and pg_ctl are already there
# (on PATH or in /usr/lib/postgresql/*/bin, where Debian puts them). Needs root for apt-get.
set -eu

have_server() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        return 0
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            return 0
        fi
    done
    return 1
}

if have_server; then
    echo "install-postgres: server binaries already present"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends postgresql postgresql-client

if ! have_server; then
    echo "install-postgres: postgresql installed but initdb/pg_ctl still not found" >&2
    exit 1
fi
echo "install-postgres: installed"
