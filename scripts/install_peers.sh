#!/usr/bin/env bash
# Install the pinned peer decoders (peers/package-lock.json) into peers/node_modules.
# Idempotent: skipped when node_modules was installed from the same lock file.
set -euo pipefail
cd "$(dirname "$0")/../peers"
export ONNXRUNTIME_NODE_INSTALL=skip  # onnxruntime-node (later) must not download binaries here
stamp=node_modules/.onnxpose-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "peers: node_modules matches package-lock.json, nothing to do"
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
echo "peers: installed $(node -e 'console.log(require("@tensorflow-models/posenet/package.json").version)' 2>/dev/null || true)"
