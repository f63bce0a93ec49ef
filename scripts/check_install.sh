#!/usr/bin/env bash
# Release check: builds the sdist and the wheel (`python -m build`, the wheel from the sdist),
# checks both with `twine check --strict`, then installs the wheel with each user-facing extra
# ALONE into a fresh virtual environment and runs that extra's entry point there, from outside
# the checkout. The development environment has every dependency and hides a missing one; a
# bare install shows it.
#
#   bash scripts/check_install.sh              # every check
#   CHECKS="torch cli" bash scripts/check_install.sh
#   JOBS=1 bash scripts/check_install.sh       # one environment at a time (default: 3)
#   LOG_DIR=/tmp/logs bash scripts/check_install.sh  # keep every check's log there
#
# Every install takes requirements/constraints.txt (torch 2.13.0, the CPU build). Environments
# are installed and run JOBS at a time: the installs wait on the disk more than on the CPU.
# Exits non-zero if the build, twine or any check fails; the log of a failed check is printed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-3}
CHECKS=${CHECKS:-"tensorflow jax torch datasets cli examples"}
work=$(mktemp -d)
start=$(date +%s)

# The extras each check installs, and the command it runs (in $dir, an empty folder).
declare -A extras=(
    [tensorflow]="tensorflow" [jax]="jax" [torch]="torch" [datasets]="datasets" [cli]="cli"
    # examples brings no backend of its own: with JAX, the README's TensorFlow-free install.
    [examples]="jax,examples"
)
smoke="$root/scripts/smoke_install.py"
declare -A commands=(
    [tensorflow]="KERAS_BACKEND=tensorflow python $smoke layer"
    [jax]="KERAS_BACKEND=jax python $smoke layer"
    [torch]="KERAS_BACKEND=torch OMP_NUM_THREADS=1 python $smoke layer"
    [datasets]="python $smoke datasets"
    [cli]="keras-atac train --help >/dev/null && python $smoke cli"
    # The quickstart on its bundled digits and on an image folder, both for one epoch.
    [examples]="export KERAS_BACKEND=jax && python $root/examples/quickstart.py --epochs 1 &&
        python $smoke image-folder images &&
        python $root/examples/quickstart.py --data-dir images --image-size 8 --epochs 1"
)

echo "=== build and twine check ==="
"$PYTHON" -m venv "$work/tools" &&
    "$work/tools/bin/python" -m pip install --quiet build twine &&
    "$work/tools/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" 2>/dev/null; echo "build failed"; exit 1; }
"$work/tools/bin/python" -m twine check --strict "$work/dist/"* || exit 1
wheel=$(echo "$work/dist/"*.whl)
echo "built $(cd "$work/dist" && echo *) in $(($(date +%s) - start)) s"

check() {
    local name=$1 env="$work/env-$1" dir="$work/run-$1" begin
    begin=$(date +%s)
    mkdir -p "$dir"
    {
        "$PYTHON" -m venv "$env" &&
            "$env/bin/python" -m pip install --quiet --no-compile \
                -c "$root/requirements/constraints.txt" "$wheel[${extras[$name]}]" &&
            echo "installed in $(($(date +%s) - begin)) s" &&
            (cd "$dir" && PATH="$env/bin:$PATH" && eval "${commands[$name]}")
    } >"$work/$name.log" 2>&1
    echo "$? $(($(date +%s) - begin))" >"$work/$name.result"
    rm -rf "$env"  # a few GB each
}

echo
echo "=== installs: $CHECKS ($JOBS at a time) ==="
for name in $CHECKS; do
    [ -n "${extras[$name]:-}" ] || { echo "unknown check $name"; exit 1; }
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    check "$name" &
done
wait

status=0
for name in $CHECKS; do
    read -r code seconds <"$work/$name.result"
    if [ "$code" -ne 0 ]; then
        status=1
        echo "--- $name: log ---"
        cat "$work/$name.log"
    fi
done
echo
echo "=== Summary per extra ==="
for name in $CHECKS; do
    read -r code seconds <"$work/$name.result"
    printf '%-11s .[%s]  exit %s  %4s s  %s\n' "$name" "${extras[$name]}" "$code" "$seconds" \
        "$(grep -v '^\s*$' "$work/$name.log" | tail -n 1 | cut -c1-80)"
done
echo "install check finished in $(($(date +%s) - start)) s"
if [ -n "${LOG_DIR:-}" ]; then
    mkdir -p "$LOG_DIR" && cp "$work"/*.log "$LOG_DIR"/ && echo "logs in $LOG_DIR"
fi
rm -rf "$work"
exit $status
