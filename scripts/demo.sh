#!/usr/bin/env bash
# `make demo`: the local stack, bootstrap, the five services in release mode, a default
# data set through the whole pipeline, a wait until every consumer has caught up, and a
# summary to check at a glance. Services are stopped at the end; `make down` stops the stack.
#
# `make run` (`scripts/demo.sh run`): the same pipeline with the producer sending at a
# steady rate until Ctrl-C, then a clean stop.
#
# Settings (environment): DEMO_SEED (42), DEMO_CUSTOMERS (2000), DEMO_SALES (20000),
# DEMO_RATE (sales/s; 250 for the demo, 50 for `make run`), DEMO_BAD_RATIO (0.01),
# DEMO_TIMEOUT (how long to wait for the consumers to catch up, 300s).
#
# kinesis-local handles about 600 Kinesis records/s per shard; the producer packs many
# events into one Kinesis record (KPL aggregation), so by count the default 2 shards per
# stream of `make up` carry 250 sales/s with room to spare, and the demo's 20,000 sales take
# 80 s. The emulator is CPU-bound, though: on a busy machine lower DEMO_RATE.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-demo}
case "$MODE" in
  demo) default_rate=250 ;;
  run) default_rate=50 ;;
  *) echo "usage: $0 [demo|run]" >&2; exit 2 ;;
esac
SEED=${DEMO_SEED:-42}
CUSTOMERS=${DEMO_CUSTOMERS:-2000}
SALES=${DEMO_SALES:-20000}
RATE=${DEMO_RATE:-$default_rate}
BAD_RATIO=${DEMO_BAD_RATIO:-0.01}
TIMEOUT=${DEMO_TIMEOUT:-300s}
CONSUMERS=(enrichment-joiner:9102 aggregator:9103 indexer:9104 archiver:9105)
DEMO_DIR=.stack/demo
mkdir -p "$DEMO_DIR"
say() { printf '\n==> %s\n' "$*"; }

make --no-print-directory up
say "building the services (release)"
cargo build --release --quiet -p producer -p enrichment-joiner -p aggregator -p indexer \
  -p archiver -p flowctl
eval "$(localstack/stack.sh env)"
bin=./target/release

# Event time starts now, so the indexer's end-to-end latency is wall-clock latency (plus
# the few seconds the consumers take to start); the summary counts only what this run made.
# Promotion windows derive from the start time, so reference data and events share it:
# otherwise the joiner would apply shifted promotions until its next reference refresh.
since=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
GEN=(--seed "$SEED" --customers "$CUSTOMERS" --start-time "$since")
# Reference data first: the joiner loads items and promos from S3 when it starts.
$bin/producer "${GEN[@]}" reference >"$DEMO_DIR/reference.log" 2>&1 \
  || { echo "demo: uploading reference data failed; see $DEMO_DIR/reference.log" >&2; exit 1; }

pids=()
stop_services() {
  [ ${#pids[@]} -gt 0 ] || return 0
  say "stopping the services (the stack keeps running; \`make down\` stops it)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local rc=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  pids=()
  if [ $rc -eq 0 ]; then echo "services stopped cleanly"; else
    echo "a service exited with code $rc; see $DEMO_DIR/<service>.log" >&2; fi
  return $rc
}
trap 'stop_services || true' EXIT

# More time per Kinesis call against the emulator (see the file).
. scripts/emulator-env.sh

# Each service in a session of its own: Ctrl-C reaches only this script, which stops
# them with one SIGTERM each (a second signal would cut their drain short).
for entry in "${CONSUMERS[@]}"; do
  name=${entry%%:*}
  setsid $bin/"$name" >"$DEMO_DIR/$name.log" 2>&1 &
  pids+=($!)
done

wait_ready() { # name port
  local deadline=$((SECONDS + 60))
  until curl -sf -m 2 "http://127.0.0.1:$2/ready" >/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "demo: $1 is not ready after 60s: $(curl -s -m 2 "http://127.0.0.1:$2/ready")" >&2
      echo "demo: see $DEMO_DIR/$1.log" >&2
      return 1
    fi
    sleep 0.5
  done
}
say "starting the consumers"
for entry in "${CONSUMERS[@]}"; do
  wait_ready "${entry%%:*}" "${entry##*:}"
  printf '  %-18s ready  http://127.0.0.1:%s\n' "${entry%%:*}" "${entry##*:}"
done

producer_pid=
interrupted=0
on_interrupt() {
  interrupted=1
  [ -n "$producer_pid" ] && kill -INT "$producer_pid" 2>/dev/null || true
}
trap on_interrupt INT TERM

run_producer() { # extra producer flags...
  setsid $bin/producer "${GEN[@]}" --rate "$RATE" --bad-record-ratio "$BAD_RATIO" \
"$@" 2>"$DEMO_DIR/producer.log" &
  producer_pid=$!
  local rc=0
  # `wait` returns early when a trapped signal arrives: wait again until the producer is gone.
  while kill -0 "$producer_pid" 2>/dev/null; do wait "$producer_pid" || rc=$?; done
  producer_pid=
  return $rc
}

if [ "$MODE" = run ]; then
  say "producer: $CUSTOMERS customers, sales at $RATE/s until Ctrl-C (log: $DEMO_DIR/producer.log)"
  cat <<EOF
  admin endpoints   http://127.0.0.1:9101..9105 (/health, /ready, /metrics)
  OpenSearch        $OPENSEARCH_URL/orders/_search
  leases and lag    $bin/flowctl status
EOF
  # A practically endless data set; Ctrl-C makes the producer flush and print its summary.
  run_producer --sales 1000000000000 || [ $interrupted = 1 ]
  trap - INT TERM
  stop_services
  trap - EXIT
  exit 0
fi

say "producer: $CUSTOMERS customers, $SALES sales at $RATE/s, ${BAD_RATIO} bad records (about $((SALES / RATE))s; log: $DEMO_DIR/producer.log)"
run_producer --sales "$SALES" || { echo "demo: the producer failed; see $DEMO_DIR/producer.log" >&2; exit 1; }
[ $interrupted = 0 ] || exit 130
trap - INT TERM

say "waiting until every consumer has caught up (at most $TIMEOUT)"
if ! $bin/flowctl wait --caught-up --timeout "$TIMEOUT"; then
  echo "demo: the pipeline did not catch up; the summary below shows how far it got" >&2
  echo "demo: logs in $DEMO_DIR/<service>.log" >&2
  $bin/flowctl summary --since "$since" || true
  exit 1
fi

say "summary"
$bin/flowctl summary --since "$since"
echo "  logs              $DEMO_DIR/<service>.log"
stop_services
trap - EXIT
