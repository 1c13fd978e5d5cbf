#!/usr/bin/env bash
# How the built-in models (src/wala/builtin/models/) were made, on a 2-core CPU: 64³ procedural shapes
# (10 families × seeds 0–39) + the offline real meshes → a VQ-VAE → point-cloud and voxel generators,
# exported pickle-free. Usage: scripts/train_builtin.sh [WORK_DIR]  (needs `make meshes` first)
set -euo pipefail
WORK="${1:-runs/builtin}"
PY="${PY:-.venv/bin/python}"
wala() { "$PY" -m wala.cli "$@"; }
wala prep procedural:all:40 data/meshes/cgal data/meshes/pymeshlab -o "$WORK/data/train" --resolution 64 --workers 2 --quiet
wala prep procedural:all:2:1000 -o "$WORK/data/eval" --resolution 64 --quiet
set_data=(--set "train.data=$WORK/data/train" --set "train.eval_data=$WORK/data/eval")
wala train-ae configs/builtin/ae64.yaml "${set_data[@]}" --set "train.out=$WORK/ae64"
for model in pc64 vx64; do
    wala train-diffusion "configs/builtin/$model.yaml" "${set_data[@]}" --set "train.out=$WORK/$model" \
        --set "autoencoder=$WORK/ae64/step-00003000.safetensors" &
done
wait
wala convert "$WORK/pc64/step-00004000.safetensors" -o src/wala/builtin/models/wala-pc64
wala convert "$WORK/vx64/step-00004000.safetensors" -o src/wala/builtin/models/wala-vx64
