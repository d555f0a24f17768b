#!/usr/bin/env bash
# `make test`: every test of the workspace against a local stack of its own, started on
# separate ports (so a running `make up` stack is neither used nor disturbed) and stopped
# at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

export STACK_RUN="$PWD/.stack/test-run"
export KINESIS_PORT=${TEST_KINESIS_PORT:-14567}
export MOTO_PORT=${TEST_MOTO_PORT:-14566}
export OPENSEARCH_PORT=${TEST_OPENSEARCH_PORT:-19200}
export STACK_PARENT_PID=$$

trap 'localstack/stack.sh down >/dev/null 2>&1 || true' EXIT
localstack/stack.sh up
eval "$(localstack/stack.sh env)"
export AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL \
  AWS_ENDPOINT_URL_FIREHOSE=$AWS_ENDPOINT_URL
# Integration tests reuse this stack and give every test its own resource names.
export FLOWLINE_TEST_REUSE_STACK=1
export STACK_HOME="$PWD/.stack"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast "$@"
fi
