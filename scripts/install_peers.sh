#!/usr/bin/env bash
# Install the pinned peer decoders (peers/package-lock.json) into peers/node_modules.
# Idempotent: skipped when node_modules was installed from the same lock file.
# Also installs Debian's chromium for the browser tests (scripts/install_browser.sh) and
# onnxruntime's OpenVINO EP in its own environment (scripts/install_openvino_ep.sh); both idempotent.
set -euo pipefail
bash "$(dirname "$0")/install_browser.sh"
bash "$(dirname "$0")/install_openvino_ep.sh"
cd "$(dirname "$0")/../peers"
# onnxruntime-node's install script downloads binaries from a host unreachable here; its npm
# package already ships the CPU binary for linux x64 (bin/napi-v6/linux/x64), which is all we use
export ONNXRUNTIME_NODE_INSTALL=skip
stamp=node_modules/.onnxpose-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "peers: node_modules matches package-lock.json, nothing to do"
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
echo "peers: installed posenet $(node -e 'console.log(require("@tensorflow-models/posenet/package.json").version)' 2>/dev/null || true), onnxruntime-node $(node -e 'console.log(require("onnxruntime-node/package.json").version)' 2>/dev/null || true)"
