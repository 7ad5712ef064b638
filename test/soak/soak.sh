#!/bin/sh
# Runs the soak (default 2 minutes) and keeps its report in a file.
# Usage: test/soak/soak.sh [-duration 3m] [other flags: go run ./test/soak -h]
# Exits with the soak's status: 0 pass, 1 a check failed, 2 bad flags.
set -u
cd "$(dirname "$0")/../.."
out="${SOAK_OUT:-soak-$(date +%Y%m%d-%H%M%S).txt}"
go build -o /tmp/stateroom-soak ./test/soak || exit 2
/tmp/stateroom-soak "$@" >"$out" 2>&1
status=$?
cat "$out"
exit $status
