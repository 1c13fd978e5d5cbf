#!/usr/bin/env bash
# Debian's Blender (3.4) for the grease_pencil sketch technique and its test (tests/sketch/test_grease_pencil.py),
# installed when missing and apt-get is there (as root), as ensure_chromium.sh does. It renders headless (surfaceless EGL).
set -euo pipefail
command -v blender >/dev/null && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends blender >/dev/null
fi
command -v blender >/dev/null || { echo "the grease_pencil sketch test needs Blender (apt-get install blender)" >&2; exit 1; }
