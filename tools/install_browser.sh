#!/usr/bin/env bash
# Install the browser the page tests drive (tests/clients/test_page.py): Debian's Chromium
# and a font, through apt-get, only when /usr/bin/chromium is missing. Idempotent.
# Playwright's own browser download is not used (it cannot be fetched on these machines).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_browser.sh: run as root (apt-get)" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version
