#!/usr/bin/env bash
# Small 64³ models of the released architecture, trained on a 2-core CPU: procedural shapes (10 families
# × seeds 0–39) + the offline real meshes → a VQ-VAE → point-cloud and voxel generators, exported
# pickle-free to models/ (then `WALA_MODELS=models wala generate pc64 …`, `python -m wala.demo
# --pointcloud-model models/pc64 --voxel-model models/vx64`). Usage: scripts/train_builtin.sh [WORK_DIR]
# (needs `make meshes` first). Measured so far: docs/training.md.
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
wala convert "$WORK/pc64/step-00001500.safetensors" -o models/pc64
wala convert "$WORK/vx64/step-00001000.safetensors" -o models/vx64
