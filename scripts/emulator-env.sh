# Sourced by scripts that run the services against the local stack (demo, end-to-end bench).
#
# kinesis-local is one Node.js thread: on a busy machine a PutRecords can take longer than
# the KPL's 6 s request timeout, and a timed-out call is sent again (a duplicate record) until
# the producer's 30 s record TTL gives up. Against the emulator, give calls more time (a
# setting of each service that writes to Kinesis; already set values win). The KPL defaults
# stay for real Kinesis.
for svc in PRODUCER ENRICHMENT_JOINER AGGREGATOR INDEXER; do
  var=${svc}_KINESIS__REQUEST_TIMEOUT
  export "$var=${!var:-20s}"
done
export PRODUCER_KINESIS__RECORD_TTL=${PRODUCER_KINESIS__RECORD_TTL:-2m}
