#!/usr/bin/env bash
# End-to-end benchmark (the last part of `make bench`): a sustained run at a fixed sales
# rate through the five release-built services on a local stack of its own ports, sampled
# by `flowctl bench-e2e`. Figures go to target/bench-e2e.txt and are printed; the script
# reports, it never fails on a figure.
#
# Settings (environment): BENCH_E2E_RATE (sales/s, 1000), BENCH_E2E_DURATION (120s),
# BENCH_E2E_CUSTOMERS (2000), BENCH_E2E_SHARDS (shards per stream, 2),
# BENCH_E2E_BASE_PORT (admin ports, 29101..29105). Stack ports as in bench.sh
# (BENCH_KINESIS_PORT 24567, BENCH_MOTO_PORT 24566, BENCH_OPENSEARCH_PORT 29200); when
# bench.sh has started that stack it is reused, otherwise it is started and stopped here.
# Quick run: BENCH_E2E_RATE=200 BENCH_E2E_DURATION=30s scripts/bench-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${BENCH_E2E_RATE:-1000}
DURATION=${BENCH_E2E_DURATION:-120s}
CUSTOMERS=${BENCH_E2E_CUSTOMERS:-2000}
SHARDS=${BENCH_E2E_SHARDS:-2}
BASE_PORT=${BENCH_E2E_BASE_PORT:-29101}

export STACK_RUN=${STACK_RUN:-$PWD/.stack/bench-run}
export KINESIS_PORT=${BENCH_KINESIS_PORT:-24567}
export MOTO_PORT=${BENCH_MOTO_PORT:-24566}
export OPENSEARCH_PORT=${BENCH_OPENSEARCH_PORT:-29200}
if ! localstack/stack.sh status >/dev/null 2>&1; then
  export STACK_PARENT_PID=$$
  trap 'localstack/stack.sh down >/dev/null 2>&1 || true' EXIT
  localstack/stack.sh up
fi
eval "$(localstack/stack.sh env)"
export AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL \
  AWS_ENDPOINT_URL_FIREHOSE=$AWS_ENDPOINT_URL

# More time per Kinesis call against the emulator, as in the demo (see the file).
. scripts/emulator-env.sh

echo "== end-to-end: building the services (release)"
cargo build --release --quiet -p producer -p enrichment-joiner -p aggregator -p indexer \
  -p archiver -p flowctl
# Two shards per stream, as the demo: enough for 1,000 sales/s within the per-shard write
# limits, and every shard costs kinesis-local a GetRecords call per consumer and second.
./target/release/flowctl bootstrap --shards "$SHARDS" --index-replicas 0 >/dev/null

stack_pids=()
for s in kinesis moto opensearch; do
  [ -f "$STACK_RUN/$s.pid" ] && stack_pids+=(--stack-pid "$s=$(cat "$STACK_RUN/$s.pid")")
done
./target/release/flowctl bench-e2e --rate "$RATE" --duration "$DURATION" \
  --customers "$CUSTOMERS" --base-port "$BASE_PORT" "${stack_pids[@]}" \
  --report target/bench-e2e.txt --log-dir target/bench-e2e-logs
