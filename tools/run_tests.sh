#!/usr/bin/env bash
# Set up tools/venv (first run: several minutes) and run the test suite.
#
# Usage: bash tools/run_tests.sh [PYTEST_ARGS ...]
#   e.g. bash tools/run_tests.sh -m "not slow"     (skip the tests that run ESPnet training)
# The tests run in one pytest-xdist worker per core (-n auto), whole test files to a worker
# (--dist loadfile: a file's shared fixtures are made once), the files with slow tests first
# (test/conftest.py, which also sets the threads per worker); the 20 slowest are listed.
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
tools/venv/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=20 "$@"
status=$?
set -e
# pytest exits 5 when no test was collected: that is a failure here too.
exit "$status"
