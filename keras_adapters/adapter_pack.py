"""Adapter-only save/load: a small per-task file for a shared backbone.

A pack is one `.npz` holding the variables a task trained (adapters,
LayerNorms, pooler, head: whatever the fine-tune mode left trainable), a JSON
config, and a sha256 fingerprint of the frozen backbone weights. Loading checks
the fingerprint and the variable names/shapes before assigning anything.
"""

import hashlib
import json
import os
import tempfile

import numpy as np

from keras_adapters import faults
from keras_adapters.errors import UserInputError

_META = "__config__"


def _key(variable, encoder_ids):
  # Strip the encoder's (possibly uniquified) layer name so keys are stable.
  if id(variable) in encoder_ids:
    return "encoder/" + variable.name.split("/", 1)[1]
  return variable.name


def backbone_fingerprint(model, encoder):
  """sha256 over the frozen (non-trainable) encoder weights."""
  trained = set(map(id, model.trainable_variables))
  encoder_ids = set(map(id, encoder.weights))
  digest = hashlib.sha256()
  frozen = sorted((_key(v, encoder_ids), v) for v in encoder.weights
                  if id(v) not in trained)
  for key, variable in frozen:
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
  return digest.hexdigest()


def save_adapter_pack(path, model, encoder, config):
  """Writes the trained variables of `model` and `config` to `path` (.npz)."""
  encoder_ids = set(map(id, encoder.weights))
  arrays = {_key(v, encoder_ids): v.numpy() for v in model.trainable_variables}
  meta = dict(config, fingerprint=backbone_fingerprint(model, encoder))
  arrays[_META] = np.array(json.dumps(meta))
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp",
                             prefix=f".{os.path.basename(path)}.")
  with os.fdopen(fd, "wb") as f:
    np.savez(f, **arrays)
    faults.mid_write("pack", tmp, f)  # test-only: KERAS_ADAPTERS_FAULT
  os.chmod(tmp, 0o644)  # mkstemp makes 0600
  os.replace(tmp, path)  # a crash mid-write never leaves a loadable pack


def read_pack(path):
  """Returns (config, arrays) of the pack at `path`."""
  if not os.path.isfile(path):
    raise UserInputError(f"adapter pack {path} not found")
  try:
    with np.load(path) as data:
      arrays = {k: data[k] for k in data.files}
    config = json.loads(str(arrays.pop(_META)))
  except Exception as e:  # zipfile/numpy/json each raise their own types
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    raise UserInputError(f"{path} is not a readable adapter pack ({reason}); "
                         "it is truncated or not a pack: copy it again or "
                         "re-run the training that wrote it") from None
  return config, arrays


def load_adapter_pack(path, model, encoder,
                      expected=("adapter_type", "adapter_size")):
  """Assigns the pack at `path` onto `model` (built like the one saved).

  Raises UserInputError, before changing anything, when the pack was trained
  on another backbone, with other `expected` config values (e.g. adapter
  size), or holds variables the model does not have.
  """
  config, arrays = read_pack(path)
  fingerprint = backbone_fingerprint(model, encoder)
  if config.get("fingerprint") != fingerprint:
    raise UserInputError(
        f"{path} was trained on another backbone (fingerprint "
        f"{config.get('fingerprint', '?')[:12]} != {fingerprint[:12]}); load it "
        "onto the encoder it was trained with")
  model_config = getattr(encoder, "get_config", dict)()
  for name in expected:
    if name in config and config[name] != model_config.get(name, config[name]):
      raise UserInputError(f"{path} has {name}={config[name]} but the model "
                           f"has {model_config.get(name)}; build the model "
                           f"with {name}={config[name]}")
  encoder_ids = set(map(id, encoder.weights))
  targets = {_key(v, encoder_ids): v for v in model.trainable_variables}
  if targets.keys() != arrays.keys():
    diff = sorted(targets.keys() ^ arrays.keys())
    raise UserInputError(f"{path} does not match the model's trained "
                         f"variables (e.g. {diff[0]}); use the same "
                         "fine_tune_mode and task as when it was saved")
  for key, value in arrays.items():
    if tuple(targets[key].shape) != value.shape:
      raise UserInputError(f"{path}: {key} has shape {value.shape}, the model "
                           f"needs {tuple(targets[key].shape)} (another task "
                           "or label count?)")
  for key, value in arrays.items():
    targets[key].assign(value)
  return config
