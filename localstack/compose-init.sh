#!/bin/sh
# Bootstrap for docker-compose.yml: runs inside the Flowline image once LocalStack and
# OpenSearch are healthy, and creates the streams, lease and state tables, bucket and index
# templates with `flowctl bootstrap` (idempotent, so `docker compose up` may run it again).
# Settings (environment): BOOTSTRAP_SHARDS (shards per stream, default 2),
# BOOTSTRAP_STREAM_SHARDS (e.g. "sales=4 orders-enriched=4"), BOOTSTRAP_WAIT (60s).
set -eu

shards=${BOOTSTRAP_SHARDS:-2}
wait=${BOOTSTRAP_WAIT:-60s}

# LocalStack reports each service separately; its container health check only says the
# gateway is up, so wait here until the four we use are available.
endpoint=${AWS_ENDPOINT_URL:?AWS_ENDPOINT_URL must name LocalStack}
ready() {
  health=$(curl -sf -m 3 "$endpoint/_localstack/health") || return 1
  for s in kinesis dynamodb s3 firehose; do
    echo "$health" | grep -Eq "\"$s\": *\"(available|running)\"" || return 1
  done
}
health=
deadline=$(( $(date +%s) + 120 ))
until ready; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "compose-init: LocalStack services not available after 120s: ${health:-no answer}" >&2
    exit 1
  fi
  sleep 2
done

set -- --shards "$shards" --index-replicas 0 --wait "$wait"
for pair in ${BOOTSTRAP_STREAM_SHARDS:-}; do
  set -- "$@" --stream-shards "$pair"
done
echo "compose-init: flowctl bootstrap $*"
exec flowctl bootstrap "$@"
