#!/usr/bin/env bash
# Real servers for the tests: PostgreSQL (Debian's package) and an S3 server (versitygw,
# built from the Go module proxy into a per-machine cache), both on 127.0.0.1 only.
#
#   scripts/test-services.sh start   installs what is missing, starts both, waits until
#                                    both accept connections, prints `export` lines
#   scripts/test-services.sh python  only installs (or upgrades) the official openai Python
#                                    SDK into a virtualenv in the cache, prints its export line
#                                    (start also does this, and warms Go's build cache for
#                                    the openai-go client program in test/clients/go)
#   scripts/test-services.sh stop [DIR]
#                                    stops what `start` started (DIR defaults to
#                                    $FILES_API_SERVICES_DIR, which `start` exports)
#
# Typical use: eval "$(scripts/test-services.sh start)"; npm test; scripts/test-services.sh stop
# Progress goes to stderr; stdout carries only the export lines (also written to DIR/env).
set -euo pipefail

VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
CACHE_DIR=${FILES_API_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/files-api}
S3_REGION=us-east-1
# Go's official tarball installs here, and a non-login shell (CI) may lack it on PATH.
PATH=$PATH:/usr/local/go/bin

log () { printf 'test-services: %s\n' "$*" >&2; }
die () { log "error: $*"; exit 1; }

# A free TCP port on loopback. Node is there wherever the project is.
free_port () {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

random_hex () { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# Waits until something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp).
wait_for_port () {
  local port=$1 what=$2 pid=$3 tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { log "$what exited before accepting connections"; return 1; }
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { log "$what did not accept connections on port $port within 30 s"; return 1; }
    sleep 0.1
  done
}

# ---------------------------------------------------------------- PostgreSQL

# A directory holding initdb, pg_ctl and postgres that actually run. /usr/local/bin may
# hold links to another version, or to nothing: only binaries that answer --version count.
find_pg_bin () {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] &&
      "$dir/pg_ctl" --version >/dev/null 2>&1 && "$dir/postgres" --version >/dev/null 2>&1; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

as_root () {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

install_postgres () {
  log "PostgreSQL not found: installing Debian's postgresql package"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
}

# test/deploy/compose.test.ts validates docker-compose.yml with `docker-compose config`
# (Debian's v1 needs no Docker engine for that).
install_compose () {
  command -v docker-compose >/dev/null && return 0
  log "docker-compose not found: installing Debian's docker-compose package"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker-compose >&2 ||
    log "could not install docker-compose: test/deploy/compose.test.ts will skip"
}

# PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user.
PG_USER=
as_pg () {
  if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

start_postgres () {
  local bin
  bin=$(find_pg_bin) || { install_postgres; bin=$(find_pg_bin) || die "no working initdb/pg_ctl after installing postgresql"; }
  if [ "$(id -u)" = 0 ]; then
    PG_USER=postgres
    id "$PG_USER" >/dev/null 2>&1 || die "running as root but there is no '$PG_USER' user to run PostgreSQL as"
  fi
  local data=$STATE_DIR/pg/data sock=$STATE_DIR/pg/sock pwfile=$STATE_DIR/pg/pwfile
  mkdir -p "$data" "$sock"
  PG_PASSWORD=$(random_hex)
  printf '%s\n' "$PG_PASSWORD" >"$pwfile"
  [ -z "$PG_USER" ] || chown -R "$PG_USER" "$STATE_DIR/pg"
  chmod 700 "$data"
  log "PostgreSQL: $("$bin/postgres" --version) from $bin"
  # The superuser files_api has a password on TCP (the tests connect as it and create a
  # database per test); the socket trusts it so this script can create the database.
  as_pg "$bin/initdb" -D "$data" -U files_api --pwfile="$pwfile" -E UTF8 --no-locale \
    --auth-host=scram-sha-256 --auth-local=trust >"$STATE_DIR/pg/initdb.log" 2>&1 ||
    { cat "$STATE_DIR/pg/initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwfile"
  PG_PORT=$(free_port)
  # Durability is pointless for a throw-away test cluster, and fsync makes CREATE DATABASE
  # (one per test) slow.
  as_pg "$bin/pg_ctl" -D "$data" -l "$STATE_DIR/pg/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $sock -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 ||
    { cat "$STATE_DIR/pg/server.log" >&2; die "PostgreSQL did not start"; }
  echo "$bin" >"$STATE_DIR/pg/bin"
  wait_for_port "$PG_PORT" PostgreSQL "$(head -1 "$data/postmaster.pid")" || die "PostgreSQL is not listening"
  as_pg "$bin/psql" -h "$sock" -p "$PG_PORT" -U files_api -d postgres -qAt -c 'create database files_api_test' >&2
}

stop_postgres () {
  local dir=$1
  [ -f "$dir/pg/data/postmaster.pid" ] || return 0
  local bin user
  bin=$(cat "$dir/pg/bin" 2>/dev/null || find_pg_bin)
  user=$(stat -c %U "$dir/pg/data")
  if [ "$(id -u)" = 0 ] && [ "$user" != root ]; then PG_USER=$user; fi
  as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >&2 || true
}

# ---------------------------------------------------------------- S3 (versitygw)

# Built once per machine into the cache, one folder per pinned version, so bumping the
# version rebuilds and a stale binary is never picked up.
versitygw_binary () {
  local dir=$CACHE_DIR/versitygw-$VERSITYGW_VERSION/bin
  if [ -x "$dir/versitygw" ] && "$dir/versitygw" --version >/dev/null 2>&1; then
    echo "$dir/versitygw"
    return 0
  fi
  command -v go >/dev/null || return 1
  log "building versitygw $VERSITYGW_VERSION into $dir (first run on this machine)"
  mkdir -p "$dir"
  # CGO off: its RDMA packages link NVIDIA libraries that a plain machine lacks.
  # GOTOOLCHAIN=local: build with the Go installed here, never fetch another toolchain.
  if GOBIN=$dir CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install "$VERSITYGW_MODULE@$VERSITYGW_VERSION" >&2; then
    echo "$dir/versitygw"
    return 0
  fi
  return 1
}

S3_KIND=
start_s3 () {
  local gw s3dir=$STATE_DIR/s3
  mkdir -p "$s3dir/data"
  S3_PORT=$(free_port)
  S3_ACCESS=files-api-$(random_hex | cut -c1-12)
  S3_SECRET=$(random_hex)
  # FILES_API_TEST_S3=moto forces the fallback, to check that it still works.
  if [ "${FILES_API_TEST_S3:-versitygw}" != moto ] && gw=$(versitygw_binary); then
    S3_KIND=versitygw
    log "S3: versitygw $VERSITYGW_VERSION, posix backend on $s3dir/data"
    # setsid: its own process group, so `stop` ends it without touching the caller's.
    ROOT_ACCESS_KEY_ID=$S3_ACCESS ROOT_SECRET_ACCESS_KEY=$S3_SECRET \
      setsid "$gw" --port "127.0.0.1:$S3_PORT" --region "$S3_REGION" --quiet posix "$s3dir/data" \
      >"$s3dir/server.log" 2>&1 </dev/null &
  else
    log "versitygw not used (FILES_API_TEST_S3=${FILES_API_TEST_S3:-} or it could not be built): falling back to moto's server from PyPI"
    S3_KIND=moto
    local venv=$CACHE_DIR/moto-venv
    if ! [ -x "$venv/bin/moto_server" ]; then
      python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q 'moto[server]' >&2 || die "neither versitygw nor moto could be installed"
    fi
    # moto accepts any credentials: the wrong-secret test then fails instead of skipping.
    setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$s3dir/server.log" 2>&1 </dev/null &
  fi
  echo $! >"$s3dir/pid"
  wait_for_port "$S3_PORT" "$S3_KIND" "$(cat "$s3dir/pid")" || { cat "$s3dir/server.log" >&2; exit 1; }
}

stop_s3 () {
  local dir=$1 pid
  pid=$(cat "$dir/s3/pid" 2>/dev/null) || return 0
  kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 -- "-$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- openai Python SDK

# The client matrix (test/clients) drives the service with the latest official Python SDK.
# One virtualenv per machine in the cache, upgraded on every start so that CI tests the
# release users get; an existing install is kept should PyPI not answer.
openai_python () {
  local venv=$CACHE_DIR/openai-python-venv
  if ! [ -x "$venv/bin/python" ]; then
    log "creating the openai Python SDK's virtualenv in $venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade openai >&2; then
    "$venv/bin/python" -c 'import openai' 2>/dev/null || die "the openai Python SDK could not be installed"
    log "could not upgrade the openai Python SDK: keeping the installed one"
  fi
  log "openai Python SDK $("$venv/bin/python" -c 'import openai; print(openai.__version__)')"
  echo "$venv/bin/python"
}

# The client matrix's Go program (test/clients/go) links openai-go, whose first build takes
# minutes of CPU: build it once here, before the tests, so the test only hits Go's build
# cache. A failure is reported by the test itself.
warm_go_client () {
  local module
  module=$(cd "$(dirname "$0")/.." && pwd)/test/clients/go
  [ -f "$module/go.mod" ] || return 0
  command -v go >/dev/null || { log "go not found: test/clients/go-sdk.test.ts will fail"; return 0; }
  log "building the openai-go client program (cached after the first run)"
  (cd "$module" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -o /dev/null . >&2) ||
    log "could not build test/clients/go: test/clients/go-sdk.test.ts will say why"
}

# ---------------------------------------------------------------- commands

cmd_stop () {
  local dir=${1:-${FILES_API_SERVICES_DIR:-}}
  [ -n "$dir" ] || die "stop: give the folder that start printed (FILES_API_SERVICES_DIR)"
  [ -d "$dir" ] || { log "stop: $dir is gone: nothing to stop"; return 0; }
  stop_s3 "$dir"
  stop_postgres "$dir"
  rm -rf "$dir"
  log "stopped and removed $dir"
}

cmd_start () {
  STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/files-api-services.XXXXXX")
  # The postgres user must reach its data folder inside this one.
  chmod 711 "$STATE_DIR"
  trap 'status=$?; if [ $status -ne 0 ]; then cmd_stop "$STATE_DIR"; fi' EXIT
  start_postgres
  start_s3
  install_compose
  local python
  python=$(openai_python)
  warm_go_client
  local env=$STATE_DIR/env
  (
    umask 077
    cat >"$env" <<EOF
export FILES_API_SERVICES_DIR='$STATE_DIR'
export TEST_DATABASE_URL='postgres://files_api:$PG_PASSWORD@127.0.0.1:$PG_PORT/files_api_test'
export S3_TEST_ENDPOINT='http://127.0.0.1:$S3_PORT'
export S3_TEST_ACCESS_KEY_ID='$S3_ACCESS'
export S3_TEST_SECRET_ACCESS_KEY='$S3_SECRET'
export S3_TEST_REGION='$S3_REGION'
export S3_TEST_SERVER_KIND='$S3_KIND'
export OPENAI_PYTHON='$python'
EOF
  )
  log "PostgreSQL on 127.0.0.1:$PG_PORT, $S3_KIND on 127.0.0.1:$S3_PORT; stop with: $0 stop $STATE_DIR"
  cat "$env"
}

case ${1:-} in
  start) cmd_start ;;
  python) python=$(openai_python); echo "export OPENAI_PYTHON='$python'" ;;
  stop) cmd_stop "${2:-}" ;;
  *) echo "usage: $0 start | python | stop [DIR]" >&2; exit 2 ;;
esac
