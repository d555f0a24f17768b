#!/bin/sh
# Imports the Flowline saved objects (index patterns for the `orders` and `order-metrics`
# aliases, three visualisations, the "Flowline sales" dashboard) into OpenSearch Dashboards.
# Idempotent: objects keep fixed ids and are overwritten.
#
#   DASHBOARDS_URL=http://127.0.0.1:5601 deploy/opensearch-dashboards/import.sh
#   # Amazon OpenSearch Service serves Dashboards under /_dashboards:
#   DASHBOARDS_URL=https://search-flowline-xyz.eu-west-1.es.amazonaws.com/_dashboards \
#   DASHBOARDS_USERNAME=flowline-admin DASHBOARDS_PASSWORD=... deploy/opensearch-dashboards/import.sh
#
# Settings (environment): DASHBOARDS_URL (default http://127.0.0.1:5601), DASHBOARDS_USERNAME
# and DASHBOARDS_PASSWORD (basic auth, when security is on), DASHBOARDS_WAIT (seconds to wait
# for Dashboards to answer, default 120), SAVED_OBJECTS (the NDJSON file, default beside this).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
url=${DASHBOARDS_URL:-http://127.0.0.1:5601}
url=${url%/}
file=${SAVED_OBJECTS:-$here/flowline.ndjson}
wait_s=${DASHBOARDS_WAIT:-120}

[ -f "$file" ] || { echo "import: $file not found" >&2; exit 1; }

# curl reads the credentials from a config on stdin, so they never show in `ps`.
auth_config() {
  if [ -n "${DASHBOARDS_USERNAME:-}" ]; then
    printf 'user = "%s:%s"\n' "$DASHBOARDS_USERNAME" "${DASHBOARDS_PASSWORD:-}"
  fi
}

deadline=$(( $(date +%s) + wait_s ))
until auth_config | curl -sf -o /dev/null -m 5 -K - "$url/api/status"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "import: OpenSearch Dashboards at $url did not answer within ${wait_s}s" >&2
    exit 1
  fi
  sleep 2
done

response=$(auth_config | curl -sS -m 60 -K - -X POST \
  -H 'osd-xsrf: true' \
  -F "file=@$file" \
  -w '\n%{http_code}' \
  "$url/api/saved_objects/_import?overwrite=true")
status=$(printf '%s\n' "$response" | tail -n 1)
body=$(printf '%s\n' "$response" | sed '$d')

case $body in
  *'"success":true'*)
    count=$(printf '%s' "$body" | sed -n 's/.*"successCount":\([0-9]*\).*/\1/p')
    echo "import: $count saved objects imported into $url"
    ;;
  *)
    echo "import: failed (HTTP $status): $body" >&2
    exit 1
    ;;
esac
