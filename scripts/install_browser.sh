#!/usr/bin/env bash
# Install Debian's chromium (the headless browser tests/test_web_page.py and
# benchmarks/runtimes.py drive) when it is missing. Idempotent: nothing happens when
# `chromium` is already on PATH. Needs root (or sudo) for apt-get; without it, says so and
# exits 0 so the rest of the test command runs (the browser tests then skip with the reason).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "browser: $(chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "browser: chromium missing and no root to apt-get it; browser tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
echo "browser: installed $(chromium --version 2>/dev/null)"
