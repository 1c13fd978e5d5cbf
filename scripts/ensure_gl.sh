#!/usr/bin/env bash
# Headless OpenGL for previews and renders (moderngl over EGL): installs Mesa's EGL driver when the
# venv's Python cannot open a context and apt-get is there to fix it. Usage: ensure_gl.sh PYTHON
set -euo pipefail
PY="$1"
probe() { "$PY" -c "import moderngl; moderngl.create_standalone_context(backend='egl').release()" >/dev/null 2>&1; }
probe && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 >/dev/null
fi
probe || { echo "no headless OpenGL (install Mesa EGL: libegl1 libegl-mesa0 libgl1-mesa-dri)" >&2; exit 1; }
