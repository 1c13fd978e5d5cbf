#!/usr/bin/env bash
# Debian's Chromium for the web page's browser test (tests/serve), installed when missing and apt-get
# is there (as root). Playwright drives it; it never downloads a browser of its own.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null || { echo "the browser test needs Chromium (apt-get install chromium)" >&2; exit 1; }
