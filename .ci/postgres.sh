#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the test suite and print its URL.
# Installs Debian's postgresql package if it is missing. Idempotent: reuses a running server.
# Usage: export TEST_POSTGRES_URL=$(.ci/postgres.sh)
set -euo pipefail

PORT="${PGTEST_PORT:-54329}"
DATA="${PGTEST_DATA:-/tmp/tro-ly-cks-pgdata}"
URL="postgresql+asyncpg://postgres@127.0.0.1:${PORT}/postgres"

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  echo "$d"
}

BIN=$(bindir)
if [ -z "$BIN" ]; then
  echo "installing postgresql from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -q && apt-get install -y -q postgresql) >&2
  BIN=$(bindir)
fi

as_pg() {
  if [ "$(id -u)" = "0" ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

if as_pg "$BIN/pg_isready -q -h 127.0.0.1 -p $PORT"; then
  echo "$URL"
  exit 0
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA"
  [ "$(id -u)" = "0" ] && chown postgres "$DATA"
  as_pg "$BIN/initdb -D $DATA -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >&2
fi
as_pg "$BIN/pg_ctl -D $DATA -l $DATA/server.log -w -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' start" >&2
echo "$URL"
