#!/usr/bin/env bash
# Install onnxruntime's OpenVINO execution provider (the onnxruntime-openvino wheel, pinned in
# scripts/openvino_ep_requirements.txt) into its own virtual environment, peers/ort-openvino
# (git-ignored): the wheel replaces the onnxruntime package, so it cannot share the main one.
# The runtime matrix (runtime ort-openvino-ep), tests/test_openvino.py and tests/test_runtimes.py
# run it from there.
# Idempotent: skipped when the environment was installed from the same requirements file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../peers/ort-openvino"
req="$here/openvino_ep_requirements.txt"
stamp="$venv/.onnxpose-requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "openvino-ep: $venv matches $(basename "$req"), nothing to do"
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "openvino-ep: installed $("$venv/bin/python" -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())')"
