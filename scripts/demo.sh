#!/usr/bin/env bash
# `make demo`: the local stack, bootstrap, the five services in release mode, and proof
# that each is up and ready. Services are stopped at the end; `make down` stops the stack.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=(producer:9101 enrichment-joiner:9102 aggregator:9103 indexer:9104 archiver:9105)
DEMO_DIR=.stack/demo
mkdir -p "$DEMO_DIR"

make --no-print-directory up
echo "demo: building the services (release)"
cargo build --release --quiet --workspace --bins
eval "$(localstack/stack.sh env)"
# Reference data first: the joiner loads items and promos from S3 when it starts.
./target/release/producer reference >"$DEMO_DIR/reference.log" 2>&1 \
  || { echo "demo: uploading reference data failed; see $DEMO_DIR/reference.log" >&2; exit 1; }

pids=()
stop_services() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  pids=()
  return $rc
}
trap 'stop_services || true' EXIT

for entry in "${SERVICES[@]}"; do
  name=${entry%%:*}
  ./target/release/"$name" >"$DEMO_DIR/$name.log" 2>&1 &
  pids+=($!)
done

wait_ready() { # name port
  local deadline=$((SECONDS + 60)) body
  until body=$(curl -sf -m 2 "http://127.0.0.1:$2/ready"); do
    if [ $SECONDS -ge $deadline ]; then
      echo "demo: $1 is not ready after 60s: $(curl -s -m 2 "http://127.0.0.1:$2/ready")" >&2
      echo "demo: see $DEMO_DIR/$1.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

printf '\n%-18s %-24s %s\n' SERVICE ADMIN READY
for entry in "${SERVICES[@]}"; do
  name=${entry%%:*}; port=${entry##*:}
  wait_ready "$name" "$port"
  printf '%-18s %-24s %s\n' "$name" "http://127.0.0.1:$port" "$(curl -s -m 2 "http://127.0.0.1:$port/ready")"
done
cat <<EOF2

All five services are up and ready. Look next at:
  admin endpoints   http://127.0.0.1:<port>/health, /ready, /metrics (ports above)
  OpenSearch        $OPENSEARCH_URL/_index_template/orders
  logs              $DEMO_DIR/<service>.log
Stopping the services now (the stack keeps running; \`make down\` stops it).
EOF2
stop_services
trap - EXIT
echo "demo: services stopped cleanly"
