#!/bin/sh
# Container entrypoint: the first argument names the Flowline binary to run, the rest are
# its arguments. `exec` replaces this shell, so the binary is PID 1 and SIGTERM from Docker or
# Kubernetes reaches it directly and its graceful drain runs.
set -eu

bin_dir=${FLOWLINE_BIN_DIR:-/usr/local/bin}
binaries="producer enrichment-joiner aggregator indexer archiver flowctl"

usage() {
  echo "usage: <image> SERVICE [ARGS...]   SERVICE is one of: $binaries" >&2
  echo "       <image> SERVICE --help       that binary's own help" >&2
}

if [ $# -eq 0 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  usage
  exit 0
fi

name=$1
shift
for b in $binaries; do
  if [ "$b" = "$name" ]; then
    exec "$bin_dir/$b" "$@"
  fi
done
# Scripts mounted into the container (the compose init jobs) run as given.
case $name in
  /*.sh) exec "$name" "$@" ;;
esac
echo "flowline-entrypoint: unknown service '$name'" >&2
usage
exit 64
