#!/usr/bin/env bash
# wala as a pip user gets it: an sdist, the wheel built from that sdist, and the wheel installed (not
# editable, no extras) into a fresh venv beside torch, then `wala --help`, `wala models` and the built-in
# pc64 on a bundled example, all run from a folder outside the repository so the source tree cannot be
# imported instead. Everything lives in one temporary folder, removed at the end; pip's cache is kept, so
# after the first run nothing is downloaded again.
# Usage: wheel_check.sh PYTHON [TORCH]   PYTHON has `build` (the dev venv's); TORCH is the requirement
# installed first (default torch==2.13.0, the Makefile's CPU pin).
set -euo pipefail
PY="$1"
TORCH="${2:-torch==2.13.0}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
quiet() { "$@" >"$WORK/log" 2>&1 || { cat "$WORK/log" >&2; echo "wheel-check: failed: $*" >&2; exit 1; }; }

# The wheel comes from the sdist (in its own folder), so a file missing from either is missed here too.
quiet "$PY" -m build --outdir "$WORK/dist" "$REPO"
WHEEL="$(ls "$WORK"/dist/wala-*.whl)"

# Every tracked file of the package (modules, built-in models, examples, the web page) is in the wheel.
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$REPO" ls-files src/wala | grep -v '/__pycache__/' | sed 's|^src/||' >"$WORK/expected"
    "$PY" - "$WHEEL" "$WORK/expected" <<'EOF'
import sys, zipfile

in_wheel = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [n for n in open(sys.argv[2]).read().split("\n") if n and n not in in_wheel]
if missing:
    sys.exit(f"wheel-check: {len(missing)} package files missing from the wheel: {', '.join(missing[:10])}")
EOF
fi

"$PY" -m venv "$WORK/venv"
BIN="$WORK/venv/bin"
quiet "$BIN/python" -m pip install --upgrade pip
quiet "$BIN/python" -m pip install "$TORCH"
quiet "$BIN/python" -m pip install "$WHEEL"

# A user's machine: no model folders, an empty hub cache, offline, nothing of the repository importable.
mkdir -p "$WORK/home" "$WORK/run"
cd "$WORK/run"
export HOME="$WORK/home" HF_HOME="$WORK/home/hf" HF_HUB_OFFLINE=1
unset WALA_MODELS PYTHONPATH
SITE="$("$BIN/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PACKAGE="$("$BIN/python" -c 'import pathlib, wala; print(pathlib.Path(wala.__file__).parent)')"
[ "$PACKAGE" = "$SITE/wala" ] || { echo "wheel-check: wala imported from $PACKAGE, not $SITE" >&2; exit 1; }
# the base install ran these commands without any extra
"$BIN/python" -c "
import importlib.util, sys
present = [m for m in ('fastapi', 'uvicorn', 'diffusers', 'transformers') if importlib.util.find_spec(m)]
sys.exit(f'wheel-check: the base install brought {present}' if present else 0)"

"$BIN/wala" --help >/dev/null
"$BIN/wala" models | tee models.txt
grep "^pc64 " models.txt | grep -qF "$SITE/wala/builtin/pc64" || { echo "wheel-check: pc64 not listed from the wheel" >&2; exit 1; }
"$BIN/wala" generate pc64 --pointcloud "$PACKAGE/examples/pointcloud/mug_5000.ply" -o out --seed 0
"$BIN/python" -c "
import sys, trimesh
mesh = trimesh.load('out/sample_0000.obj')
sys.exit(0 if len(mesh.faces) > 1000 else f'wheel-check: pc64 made {len(mesh.faces)} faces')"
echo "wheel-check: $(basename "$WHEEL") with $("$BIN/python" -c 'import torch; print("torch", torch.__version__)') ok"
