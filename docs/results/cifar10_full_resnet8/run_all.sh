#!/usr/bin/env bash
# Issue 15: cifar_resnet8 on all of CIFAR-10, the ATAC recipe scaled to 30 epochs. Resumable:
# rerun this script; finished runs are read back, an interrupted one continues from its backup.
set -euo pipefail
cd /work/runsrc
export KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2
COMMON=(--model cifar_resnet8 --dataset cifar10 --data-dir /work/data/cifar10.npz --epochs 30
        --verbose 2 --resume)
OUT=/work/runs/cifar10_full
/work/main/.venv/bin/python -m keras_atac.cli compare --activations relu,atac --seed 0 "${COMMON[@]}" --out $OUT/seed0
/work/main/.venv/bin/python -m keras_atac.cli train --activation relu --attention se --seed 0 "${COMMON[@]}" --out $OUT/seed0_se
/work/main/.venv/bin/python -m keras_atac.cli compare --activations relu,atac --seed 1 "${COMMON[@]}" --out $OUT/seed1
echo ALL DONE
