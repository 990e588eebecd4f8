#!/usr/bin/env bash
# Runs before `npm test`: the dashboard test drives a real headless Chromium
# (Debian's package). Installs it when it is missing and this user may.
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the dashboard test (apt-get)..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "Chromium is missing: install it (apt-get install chromium) or set CHROMIUM_PATH; the dashboard test needs it." >&2
fi
