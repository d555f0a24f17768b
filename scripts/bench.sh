#!/usr/bin/env bash
# `make bench`: every benchmark, in-process ones first, then those that need the local
# stack (started on ports of its own and stopped at the end). Figures are printed and
# kept in target/bench-report.txt. Benchmarks report; they never fail on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."

report=target/bench-report.txt
mkdir -p target
: > "$report"

run() { # crate bench
  echo "== $1 / $2" | tee -a "$report"
  cargo bench --quiet -p "$1" --bench "$2" 2>&1 | tee -a "$report"
}

# In process, one core each: generation, parsing, join, windows, Parquet.
for target in flowline-datagen:generate flowline-model:parse flowline-join:join \
              flowline-window:window flowline-lake:parquet; do
  run "${target%%:*}" "${target##*:}"
done

# Rebuild, local files to local files, one core and two (size: REBUILD_BENCH_SALES).
run flowctl rebuild

# Against the local emulators: Kinesis producer throughput, OpenSearch bulk throughput.
export STACK_RUN="$PWD/.stack/bench-run"
export KINESIS_PORT=${BENCH_KINESIS_PORT:-24567}
export MOTO_PORT=${BENCH_MOTO_PORT:-24566}
export OPENSEARCH_PORT=${BENCH_OPENSEARCH_PORT:-29200}
export STACK_PARENT_PID=$$
trap 'localstack/stack.sh down >/dev/null 2>&1 || true' EXIT
localstack/stack.sh up
eval "$(localstack/stack.sh env)"
export AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL
export FLOWLINE_TEST_REUSE_STACK=1
run flowline-kinesis producer_throughput
run flowline-opensearch bulk_throughput
run indexer indexer_throughput
run enrichment-joiner joiner_throughput
echo "== end-to-end" | tee -a "$report"; scripts/bench-e2e.sh 2>&1 | tee -a "$report"

echo "figures kept in $report"
