#!/usr/bin/env bash
# Set up tools/venv (first run: several minutes) and run the test suite.
#
# Usage: bash tools/run_tests.sh [PYTEST_ARGS ...]
#   e.g. bash tools/run_tests.sh -m "not slow"     (skip the tests that run ESPnet training)
# The tests run in one pytest-xdist worker per core (-n auto), test by test (--dist load),
# each worker with its share of the cores as threads (test/conftest.py); the 20 slowest are
# listed.
# Arguments come after these defaults, so e.g. "-n 0" runs them in this process.
set -euo pipefail
case "${1:-}" in
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup_system.sh
bash tools/setup_venv.sh
set +e
tools/venv/bin/python -m pytest -n auto --dist load --durations=20 "$@"
status=$?
set -e
# pytest exits 5 when no test was collected: that is a failure here too.
exit "$status"
