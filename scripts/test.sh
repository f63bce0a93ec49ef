#!/usr/bin/env bash
# Installs the test dependencies into a virtual environment and runs the whole test suite once
# per Keras backend (one pytest process each: KERAS_BACKEND is read when Keras is imported).
#
#   bash scripts/test.sh                 # all three backends, venv in .venv
#   BACKENDS="jax" bash scripts/test.sh -k atac
#   VENV=/tmp/venv bash scripts/test.sh  # another environment
#   WORKERS=1 bash scripts/test.sh       # one pytest worker (default: one per CPU core)
#
# Extra arguments go to pytest. Exits non-zero if any backend fails or runs no test. Each run
# ends with its 20 slowest tests (--durations=20), and --dist loadgroup keeps the tests that
# share one expensive model on one worker (see tests/conftest.py).
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
BACKENDS=${BACKENDS:-"tensorflow jax torch"}
PYTHON=${PYTHON:-python3}
WORKERS=${WORKERS:-auto}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || exit 1
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip || exit 1
"$VENV/bin/python" -m pip install --quiet -c requirements/constraints.txt -e ".[dev]" || exit 1

logs=$(mktemp -d)
status=0
for backend in $BACKENDS; do
    echo "=== KERAS_BACKEND=$backend ==="
    KERAS_BACKEND=$backend "$VENV/bin/python" -m pytest -n "$WORKERS" --dist loadgroup --durations=20 "$@" 2>&1 | tee "$logs/$backend.log"
    code=${PIPESTATUS[0]}
    # pytest exits 5 when no test ran: that is a failure here.
    [ "$code" -ne 0 ] && status=1
    echo "$code" >"$logs/$backend.code"
done

echo
echo "=== Summary per backend ==="
for backend in $BACKENDS; do
    summary=$(grep -E "^=+ .*(passed|failed|error|no tests ran).* =+$" "$logs/$backend.log" | tail -n 1)
    printf '%-11s exit %s  %s\n' "$backend" "$(cat "$logs/$backend.code")" "${summary:-no pytest summary}"
done
exit $status
