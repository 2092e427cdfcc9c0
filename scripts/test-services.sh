#!/usr/bin/env bash
# Real servers for the tests: PostgreSQL (Debian's package), an S3 server (versitygw,
# built from the Go module proxy into a per-machine cache) and an OpenAI-compatible
# upstream for batches (LiteLLM's proxy from PyPI, answering offline from mock models),
# all on 127.0.0.1 only.
#
#   scripts/test-services.sh start   installs what is missing, starts all three, waits until
#                                    each answers, prints `export` lines
#                                    (FILES_API_TEST_LITELLM=off leaves LiteLLM out)
#   scripts/test-services.sh litellm only starts LiteLLM's proxy, in a folder of its own
#                                    (stopped with `stop DIR` like the rest)
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
# Pinned, unlike the openai SDK: the tests assert this version's answers (statuses, headers,
# error shapes), and the proxy is a large dependency tree run as root, so an upgrade is a
# reviewed change of this line. prisma is the extra-proxy extra's ORM client: without it
# the proxy's error handler imports it, fails, and answers a missing key with a bare 500
# instead of its 401 (no database is used; `import prisma` needs no generated client).
LITELLM_VERSION=1.108.7
PRISMA_VERSION=0.15.0
# The mock-chat model's fixed answer; test/batches/litellm-upstream.test.ts asserts it.
LITELLM_MOCK_TEXT='files-api test answer from the LiteLLM mock'
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

# test/console/console.test.ts drives Debian's chromium headless with playwright-core
# (which never downloads a browser of its own); without it that test skips.
install_chromium () {
  [ -x /usr/bin/chromium ] && return 0
  log "chromium not found: installing Debian's chromium package (about a minute)"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >&2 ||
    log "could not install chromium: test/console/console.test.ts will skip"
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

# Ends the process group (setsid) whose leader's pid is in the file $1: SIGTERM, then
# SIGKILL after 5 s.
stop_group () {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 -- "-$pid" 2>/dev/null || true
}

stop_s3 () { stop_group "$1/s3/pid"; }

# ---------------------------------------------------------------- LiteLLM proxy (upstream)

# One virtualenv per pinned version, like versitygw's folder: bumping the version installs
# afresh. `.installed` is written last, so an install cut short is redone, not trusted.
litellm_binary () {
  local venv=$CACHE_DIR/litellm-$LITELLM_VERSION-venv
  if [ -f "$venv/.installed" ] && [ -x "$venv/bin/litellm" ]; then
    echo "$venv/bin/litellm"
    return 0
  fi
  log "installing litellm[proxy]==$LITELLM_VERSION into $venv (first run on this machine: about a minute)"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "litellm[proxy]==$LITELLM_VERSION" "prisma==$PRISMA_VERSION" >&2 ||
    { rm -rf "$venv"; return 1; }
  touch "$venv/.installed"
  echo "$venv/bin/litellm"
}

# Models answer from `mock_response` and never call out; api_base points at the discard
# port on loopback, where nothing listens, so a mock that stopped working would fail at
# once instead of reaching a real provider. No retries: a test sees LiteLLM's first answer.
write_litellm_config () {
  cat >"$1" <<EOF
model_list:
  - model_name: mock-chat
    litellm_params:
      model: openai/mock-chat
      api_base: http://127.0.0.1:9/v1
      api_key: unused-mock-response
      mock_response: "$LITELLM_MOCK_TEXT"
  # The model of the seed's sample file (test/fixtures/test_model.jsonl), so it runs as it is.
  - model_name: batch-test-model
    litellm_params:
      model: openai/batch-test-model
      api_base: http://127.0.0.1:9/v1
      api_key: unused-mock-response
      mock_response: "$LITELLM_MOCK_TEXT"
  - model_name: mock-embed
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: http://127.0.0.1:9/v1
      api_key: unused-mock-response
      mock_response: [0.1, 0.2, 0.3]
    model_info:
      mode: embedding
  # LiteLLM turns this mock text into its RateLimitError: a 429 without Retry-After.
  - model_name: mock-429
    litellm_params:
      model: openai/mock-429
      api_base: http://127.0.0.1:9/v1
      api_key: unused-mock-response
      mock_response: litellm.RateLimitError
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
router_settings:
  num_retries: 0
EOF
}

LITELLM_PORT=
LITELLM_KEY=
LITELLM_BIN=
LITELLM_LAUNCHED=
# Starts the proxy and returns at once; wait_litellm waits for it, so its 10-30 s of
# Python start-up overlap the other steps of `start`.
start_litellm () {
  local dir=$STATE_DIR/litellm
  LITELLM_BIN=$(litellm_binary) || die "litellm[proxy]==$LITELLM_VERSION could not be installed from PyPI (FILES_API_TEST_LITELLM=off starts the rest without it)"
  mkdir -p "$dir"
  LITELLM_PORT=$(free_port)
  # Master keys are bearer tokens starting with sk-; this one lives for one run.
  LITELLM_KEY=sk-files-api-$(random_hex)
  write_litellm_config "$dir/config.yaml"
  log "LiteLLM proxy $LITELLM_VERSION (mock models, no database) starting on 127.0.0.1:$LITELLM_PORT"
  # LITELLM_LOCAL_MODEL_COST_MAP: the bundled cost map, not a download at start-up.
  LITELLM_MASTER_KEY=$LITELLM_KEY LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY_DISABLED=true \
    setsid "$LITELLM_BIN" --config "$dir/config.yaml" --host 127.0.0.1 --port "$LITELLM_PORT" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  LITELLM_LAUNCHED=$SECONDS
}

# Ready means serving authenticated requests with its models loaded: `GET /v1/models`
# with the master key lists mock-chat (the health routes answer before the config is read).
wait_litellm () {
  local dir=$STATE_DIR/litellm
  "$(dirname "$LITELLM_BIN")/python" - "$LITELLM_PORT" "$LITELLM_KEY" "$(cat "$dir/pid")" <<'EOF' ||
import json, os, sys, time, urllib.request
port, key, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("LiteLLM exited before answering")
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=5) as res:
            if "mock-chat" in [m["id"] for m in json.load(res)["data"]]:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.25)
sys.exit("LiteLLM did not list its models within 120 s")
EOF
    { tail -n 40 "$dir/server.log" >&2; die "LiteLLM's proxy did not start (log above)"; }
  log "LiteLLM proxy answering on 127.0.0.1:$LITELLM_PORT, $((SECONDS - LITELLM_LAUNCHED)) s after its launch"
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
  stop_group "$dir/litellm/pid"
  stop_s3 "$dir"
  stop_postgres "$dir"
  rm -rf "$dir"
  log "stopped and removed $dir"
}

new_state_dir () {
  STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/files-api-services.XXXXXX")
  # The postgres user must reach its data folder inside this one.
  chmod 711 "$STATE_DIR"
  trap 'status=$?; if [ $status -ne 0 ]; then cmd_stop "$STATE_DIR"; fi' EXIT
}

# The upstream's export lines (a secret among them: the env file is 0600).
litellm_exports () {
  cat <<EOF
export LITELLM_BASE_URL='http://127.0.0.1:$LITELLM_PORT/v1'
export LITELLM_MASTER_KEY='$LITELLM_KEY'
EOF
}

cmd_litellm () {
  new_state_dir
  start_litellm
  wait_litellm
  (
    umask 077
    { echo "export FILES_API_SERVICES_DIR='$STATE_DIR'"; litellm_exports; } >"$STATE_DIR/env"
  )
  log "stop with: $0 stop $STATE_DIR"
  cat "$STATE_DIR/env"
}

cmd_start () {
  new_state_dir
  start_postgres
  start_s3
  local litellm=${FILES_API_TEST_LITELLM:-on}
  if [ "$litellm" = off ]; then
    log "FILES_API_TEST_LITELLM=off: no LiteLLM proxy (test/batches/litellm-upstream.test.ts will skip)"
  else
    start_litellm
  fi
  install_compose
  install_chromium
  local python
  python=$(openai_python)
  warm_go_client
  [ "$litellm" = off ] || wait_litellm
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
    [ "$litellm" = off ] || litellm_exports >>"$env"
  )
  log "PostgreSQL on 127.0.0.1:$PG_PORT, $S3_KIND on 127.0.0.1:$S3_PORT${LITELLM_PORT:+, LiteLLM on 127.0.0.1:$LITELLM_PORT}; stop with: $0 stop $STATE_DIR"
  cat "$env"
}

case ${1:-} in
  start) cmd_start ;;
  python) python=$(openai_python); echo "export OPENAI_PYTHON='$python'" ;;
  litellm) cmd_litellm ;;
  stop) cmd_stop "${2:-}" ;;
  *) echo "usage: $0 start | python | litellm | stop [DIR]" >&2; exit 2 ;;
esac
