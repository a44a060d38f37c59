#!/usr/bin/env bash
# Throwaway PostgreSQL for the test suite.
#   scripts/test-postgres.sh start      prints a connection URL on stdout (nothing else)
#   scripts/test-postgres.sh stop URL   stops the server started for URL and deletes its files
# `start` reuses TEST_DATABASE_URL when it is already set. It installs Debian's postgresql
# package when no server binaries are found (needs root, as in CI), runs initdb in a temp
# directory owned by the postgres user, and listens on 127.0.0.1 on a free port only.
set -euo pipefail

log() { echo "test-postgres: $*" >&2; }

find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return 0; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

# Runs a command as the postgres user when we are root (postgres refuses to run as root).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Under /tmp (not $TMPDIR): the postgres user must be able to reach it.
instance_dir() { echo "/tmp/crd-test-pg-$1"; }

start() {
  if [[ -n "${TEST_DATABASE_URL:-}" ]]; then echo "$TEST_DATABASE_URL"; return 0; fi
  local bindir
  if ! bindir=$(find_bindir); then
    if [[ $(id -u) -ne 0 ]]; then log "PostgreSQL is not installed and we are not root: install the postgresql package"; exit 1; fi
    log "installing Debian postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || apt-get update >&2
    apt-get install -y -qq postgresql >&2
    bindir=$(find_bindir) || { log "postgresql installed but initdb not found"; exit 1; }
  fi
  if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  local port dir
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    dir=$(instance_dir "$port")
    mkdir "$dir" 2>/dev/null && break
    dir=""
  done
  [[ -n "$dir" ]] || { log "could not create an instance directory"; exit 1; }
  mkdir -p "$dir/sock"
  [[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$dir"
  chmod 700 "$dir"
  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres crd_test >&2
  echo "$bindir" >"$dir/bindir"
  echo "postgres://postgres@127.0.0.1:$port/crd_test"
}

stop() {
  local url=${1:?usage: test-postgres.sh stop URL}
  local port=${url##*:}
  port=${port%%/*}
  local dir
  dir=$(instance_dir "$port")
  [[ -d "$dir" ]] || { log "no test instance for port $port (not started by this script?)"; return 0; }
  local bindir
  bindir=$(cat "$dir/bindir" 2>/dev/null || find_bindir)
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop URL" >&2; exit 2 ;;
esac
