#!/usr/bin/env bash
# Quiet per-epoch timing for issue 15: 2 epochs of each network on all of CIFAR-10, nothing else running.
set -euo pipefail
cd /work/main
export KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2
C=(--model cifar_resnet8 --dataset cifar10 --data-dir /work/data/cifar10.npz --epochs 2 --verbose 2 --seed 0)
.venv/bin/python -m keras_atac.cli train --activation relu "${C[@]}" --out /work/runs/timing/relu
.venv/bin/python -m keras_atac.cli train --activation atac "${C[@]}" --out /work/runs/timing/atac
.venv/bin/python -m keras_atac.cli train --activation relu --attention se "${C[@]}" --out /work/runs/timing/relu_se
echo DONE
