#!/usr/bin/env bash
# The local stack: API-compatible Kinesis, DynamoDB/S3/Firehose and OpenSearch servers on
# 127.0.0.1, installed from the package registries into a git-ignored folder.
#
#   stack.sh install   install what is missing (idempotent)
#   stack.sh up [S..]  install, start the servers (all, or the named ones), wait until each answers
#   stack.sh down [S..] stop exactly the processes `up` started (by pid file)
#   stack.sh status    one line per server
#   stack.sh env       print the environment that points clients at the stack
#
# kinesis-mock caps shards at 50 per account by default; a test suite creating streams
# per test needs far more, so the cap is raised.
#
# Settings (environment): STACK_HOME (install folder, default <repo>/.stack),
# STACK_RUN (pid and log folder, default $STACK_HOME/run), KINESIS_PORT (4567),
# MOTO_PORT (4566), OPENSEARCH_PORT (9200), STACK_TIMEOUT (seconds to wait per server, 90),
# STACK_PARENT_PID (tests: stop the stack when that process is gone, even if it was killed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
STACK_HOME=${STACK_HOME:-$repo/.stack}
STACK_RUN=${STACK_RUN:-$STACK_HOME/run}
KINESIS_PORT=${KINESIS_PORT:-4567}
MOTO_PORT=${MOTO_PORT:-4566}
OPENSEARCH_PORT=${OPENSEARCH_PORT:-9200}
STACK_TIMEOUT=${STACK_TIMEOUT:-90}
SERVERS=(kinesis moto opensearch)

log() { printf 'stack: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it yourself, then run again)"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Installs the emulators when their pinned manifests changed since the last install.
install() {
  local missing=()
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  command -v curl >/dev/null || missing+=(curl)
  command -v promtool >/dev/null || missing+=(prometheus)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

  mkdir -p "$STACK_HOME"
  local stamp="$STACK_HOME/installed.sha256" want
  want=$(cat "$here/package-lock.json" "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && [ -x "$STACK_HOME/venv/bin/moto_server" ] && [ -f "$STACK_HOME/node_modules/kinesis-local/main.js" ]; then
    return 0
  fi
  log "installing kinesis-local (npm) into $STACK_HOME"
  cp "$here/package.json" "$here/package-lock.json" "$STACK_HOME/"
  (cd "$STACK_HOME" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci failed in $STACK_HOME"
  log "installing moto[server], osmem-server, aws-kinesis-agg (pip) into $STACK_HOME/venv"
  [ -x "$STACK_HOME/venv/bin/python" ] || python3 -m venv "$STACK_HOME/venv" \
    || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$STACK_HOME/venv/bin/pip" install -q --disable-pip-version-check \
    -r "$here/requirements.txt" -c "$here/constraints.txt" || die "pip install failed"
  echo "$want" > "$stamp"
}

osmem_bin() {
  local b
  b=$(ls "$STACK_HOME"/venv/lib/python3*/site-packages/osmem_server/bin/osmem-server 2>/dev/null | head -n1)
  [ -n "$b" ] || die "osmem-server binary not found; run: $0 install"
  echo "$b"
}

port_of() {
  case $1 in kinesis) echo "$KINESIS_PORT" ;; moto) echo "$MOTO_PORT" ;; opensearch) echo "$OPENSEARCH_PORT" ;; esac
}

running_pid() { # prints the pid if the server we started is still alive
  local f="$STACK_RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

answers() {
  local port; port=$(port_of "$1")
  case $1 in
    kinesis)
      curl -s -o /dev/null -m 3 -X POST "http://127.0.0.1:$port/" \
        -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: Kinesis_20131202.ListStreams' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}' ;;
    moto) curl -sf -o /dev/null -m 3 "http://127.0.0.1:$port/moto-api/" ;;
    opensearch) curl -sf -o /dev/null -m 3 "http://127.0.0.1:$port/" ;;
  esac
}

start_one() {
  local name=$1 port pid logf
  port=$(port_of "$name")
  logf="$STACK_RUN/$name.log"
  if pid=$(running_pid "$name"); then log "$name already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "$name: port 127.0.0.1:$port is already in use by another process (set ${name^^}_PORT to move it)"
  fi
  case $name in
    kinesis)
      # Plain HTTP on the configured port; kinesis-mock's TLS listener goes one port up.
      env KINESIS_MOCK_PLAIN_PORT="$port" KINESIS_MOCK_TLS_PORT="$((port + 1))" \
        KINESIS_MOCK_CERT_PATH="$STACK_HOME/node_modules/kinesis-local/server.json" \
        AWS_REGION="${AWS_REGION:-us-east-1}" LOG_LEVEL=WARN \
        SHARD_LIMIT=100000 ON_DEMAND_STREAM_COUNT_LIMIT=1000 \
        CREATE_STREAM_DURATION=100ms DELETE_STREAM_DURATION=100ms \
        REGISTER_STREAM_CONSUMER_DURATION=100ms DEREGISTER_STREAM_CONSUMER_DURATION=100ms \
        SPLIT_SHARD_DURATION=100ms MERGE_SHARDS_DURATION=100ms UPDATE_SHARD_COUNT_DURATION=100ms \
        setsid node -r "$here/loopback.js" "$STACK_HOME/node_modules/kinesis-local/main.js" \
        >"$logf" 2>&1 </dev/null &
      ;;
    moto)
      setsid "$STACK_HOME/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logf" 2>&1 </dev/null &
      ;;
    opensearch)
      setsid "$(osmem_bin)" -addr "127.0.0.1:$port" -no-stdin-watch >"$logf" 2>&1 </dev/null &
      ;;
  esac
  echo $! > "$STACK_RUN/$name.pid"
  log "started $name (pid $!) on 127.0.0.1:$port, log $logf"
}

wait_one() {
  local name=$1 deadline=$((SECONDS + STACK_TIMEOUT))
  until answers "$name"; do
    if ! running_pid "$name" >/dev/null; then
      die "$name exited during start-up; see $STACK_RUN/$name.log: $(tail -n 5 "$STACK_RUN/$name.log" 2>/dev/null | tr '\n' ' ')"
    fi
    [ $SECONDS -lt $deadline ] || die "$name did not answer on 127.0.0.1:$(port_of "$name") within ${STACK_TIMEOUT}s; see $STACK_RUN/$name.log"
    sleep 0.5
  done
}

up() {
  install
  mkdir -p "$STACK_RUN"
  for s in "${SERVERS[@]}"; do start_one "$s"; done
  for s in "${SERVERS[@]}"; do wait_one "$s"; done
  if [ -n "${STACK_PARENT_PID:-}" ] && [ ! -f "$STACK_RUN/watchdog.pid" ]; then
    # A test that is killed cannot run its clean-up; this stops its stack instead.
    setsid bash -c "while kill -0 $STACK_PARENT_PID 2>/dev/null; do sleep 1; done; STACK_RUN='$STACK_RUN' '$here/stack.sh' down" \
      >/dev/null 2>&1 </dev/null &
    echo $! > "$STACK_RUN/watchdog.pid"
  fi
  log "servers answer: ${SERVERS[*]} (kinesis :$KINESIS_PORT, moto :$MOTO_PORT, opensearch :$OPENSEARCH_PORT)"
}

down() {
  local s pid all=$1
  for s in "${SERVERS[@]}"; do
    if pid=$(running_pid "$s"); then
      # Each server runs in its own session (setsid), so its whole group goes.
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
      log "stopped $s (pid $pid)"
    fi
    rm -f "$STACK_RUN/$s.pid"
  done
  if [ "$all" = 1 ] && [ -f "$STACK_RUN/watchdog.pid" ]; then
    pid=$(cat "$STACK_RUN/watchdog.pid"); rm -f "$STACK_RUN/watchdog.pid"
    [ "$pid" = "$$" ] || kill "$pid" 2>/dev/null || true
  fi
}

status() {
  local s pid state rc=0
  for s in "${SERVERS[@]}"; do
    if pid=$(running_pid "$s"); then
      if answers "$s"; then state="up (pid $pid)"; else state="running but not answering (pid $pid)"; rc=1; fi
    else state="down"; rc=1; fi
    printf '%-11s 127.0.0.1:%-6s %s\n' "$s" "$(port_of "$s")" "$state"
  done
  return $rc
}

env_out() {
  cat <<EOF
export AWS_REGION=\${AWS_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-test}
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:$KINESIS_PORT
export OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_PORT
EOF
}

cmd=${1:-}
shift || true
all=1
if [ $# -gt 0 ]; then
  for s in "$@"; do case $s in kinesis|moto|opensearch) ;; *) die "unknown server $s (kinesis, moto, opensearch)";; esac; done
  SERVERS=("$@"); all=0
fi
case $cmd in
  install) install ;;
  up) up ;;
  down) down "$all" ;;
  status) status ;;
  env) env_out ;;
  *) echo "usage: $0 install|up [server..]|down [server..]|status|env" >&2; exit 2 ;;
esac
