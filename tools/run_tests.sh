#!/usr/bin/env bash
# Set up tools/venv (first run: several minutes) and run the test suite.
#
# Usage: bash tools/run_tests.sh [PYTEST_ARGS ...]
#   e.g. bash tools/run_tests.sh -m "not slow"     (skip the tests that run ESPnet training)
set -euo pipefail
case "${1:-}" in
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup_system.sh
bash tools/setup_venv.sh
set +e
tools/venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when no test was collected: that is a failure here too.
exit "$status"
