"""Adapter-only save/load: a small per-task file for a shared backbone.

A pack is one `.npz` holding the variables a task trained (adapters,
LayerNorms, pooler, head: whatever the fine-tune mode left trainable; for
AdapterFusion also the fused adapters), a JSON config, and a sha256
fingerprint of the frozen backbone weights. Loading checks the fingerprint
and the variable names/shapes before assigning anything.
"""

import hashlib
import json
import os

import numpy as np

from keras_adapters.errors import UserInputError
from keras_adapters.errors import first_line
from keras_adapters.saving.atomic import atomic_file

_META = "__config__"


def _key(variable, encoder_ids):
  # Strip the encoder's (possibly uniquified) layer name so keys are stable.
  if id(variable) in encoder_ids:
    return "encoder/" + variable.name.split("/", 1)[1]
  return variable.name


def _fused_adapters(encoder):
  """Per fused pack, its adapters in `encoder`'s AdapterFusions (known by
  their `adapter_sizes`: this module stays free of TensorFlow)."""
  fusions = [f for f in getattr(encoder, "adapters", [])
             if hasattr(f, "adapter_sizes")]
  return [list(group) for group in zip(*[f.adapters for f in fusions])]


def pack_variables(model, encoder):
  """What a pack holds: the trained variables and any fused adapters."""
  fused = [v for group in _fused_adapters(encoder) for a in group
           for v in a.weights]
  return list(model.trainable_variables) + fused


def backbone_fingerprint(model, encoder):
  """sha256 over the frozen encoder weights (fused adapters aside)."""
  packed = set(map(id, pack_variables(model, encoder)))
  encoder_ids = set(map(id, encoder.weights))
  digest = hashlib.sha256()
  frozen = sorted((_key(v, encoder_ids), v) for v in encoder.weights
                  if id(v) not in packed)
  for key, variable in frozen:
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
  return digest.hexdigest()


def save_adapter_pack(path, model, encoder, config):
  """Writes the trained variables of `model` and `config` to `path` (.npz)."""
  encoder_ids = set(map(id, encoder.weights))
  arrays = {_key(v, encoder_ids): v.numpy()
            for v in pack_variables(model, encoder)}
  meta = dict(config, fingerprint=backbone_fingerprint(model, encoder))
  arrays[_META] = np.array(json.dumps(meta))
  with atomic_file(path, "wb", fault_kind="pack") as f:
    np.savez(f, **arrays)


def read_pack(path):
  """Returns (config, arrays) of the pack at `path`."""
  if not os.path.isfile(path):
    raise UserInputError(f"adapter pack {path} not found")
  try:
    with np.load(path) as data:
      arrays = {k: data[k] for k in data.files}
    config = json.loads(str(arrays.pop(_META)))
  except Exception as e:  # zipfile/numpy/json each raise their own types
    reason = first_line(e, 120)
    raise UserInputError(f"{path} is not a readable adapter pack ({reason}); "
                         "it is truncated or not a pack: copy it again or "
                         "re-run the training that wrote it") from None
  return config, arrays


def load_adapter_pack(path, model, encoder,
                      expected=("adapter_type", "adapter_size", "leave_out")):
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
  adapter_config = getattr(encoder, "adapter_config", None)
  model_config = adapter_config.to_dict() if adapter_config else {}
  for name in expected:
    if name in config and config[name] != model_config.get(name, config[name]):
      raise UserInputError(f"{path} has {name}={config[name]} but the model "
                           f"has {model_config.get(name)}; build the model "
                           f"with {name}={config[name]}")
  encoder_ids = set(map(id, encoder.weights))
  targets = {_key(v, encoder_ids): v for v in pack_variables(model, encoder)}
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


def fusion_settings(paths):
  """Classifier keywords for an AdapterFusion of the adapter packs at
  `paths`: fine_tune_mode, adapter_type and fused_adapter_sizes."""
  if len(paths) < 2:
    raise UserInputError(f"AdapterFusion fuses two or more adapter packs, got "
                         f"{len(paths)}; add the packs of other tasks")
  configs = [read_pack(path)[0] for path in paths]
  for path, config in zip(paths, configs):
    if config.get("fine_tune_mode") != "adapter":
      raise UserInputError(
          f"{path} is a fine_tune_mode={config.get('fine_tune_mode')} pack; "
          "AdapterFusion fuses packs trained with fine_tune_mode=adapter")
  types = sorted({c.get("adapter_type", "houlsby") for c in configs})
  if len(types) > 1:
    raise UserInputError(f"the packs to fuse mix adapter types ({', '.join(types)}); "
                         "fuse packs of one adapter_type")
  leave_outs = sorted({tuple(c.get("leave_out") or ()) for c in configs})
  if len(leave_outs) > 1:
    raise UserInputError(f"the packs to fuse leave out different blocks "
                         f"({', '.join(map(str, map(list, leave_outs)))}); "
                         "fuse packs of one leave_out")
  return dict(fine_tune_mode="fusion", adapter_type=types[0],
              fused_adapter_sizes=[c["adapter_size"] for c in configs],
              leave_out=list(leave_outs[0]))


def load_fused_adapters(paths, model, encoder):
  """Assigns the adapters of the packs at `paths` (in `fusion_settings`'
  order) to `encoder`'s AdapterFusions, after checking them all. Only their
  adapters are used: a fusion trains its own LayerNorms and head."""
  groups = _fused_adapters(encoder)
  if len(paths) != len(groups):
    raise UserInputError(f"the model fuses {len(groups)} adapters, got "
                         f"{len(paths)} packs")
  fingerprint = backbone_fingerprint(model, encoder)
  encoder_ids = set(map(id, encoder.weights))
  assignments = []
  for path, group in zip(paths, groups):
    config, arrays = read_pack(path)
    if config.get("fingerprint") != fingerprint:
      raise UserInputError(f"{path} was trained on another backbone; fuse "
                           "packs trained on the model's backbone")
    for adapter in group:
      for variable in adapter.weights:
        key = _key(variable, encoder_ids).replace(f"/{adapter.name}/", "/", 1)
        if arrays.get(key, np.empty(0)).shape != tuple(variable.shape):
          raise UserInputError(f"{path} has no {key} of shape "
                               f"{tuple(variable.shape)}; was it trained with "
                               "another adapter_type or size?")
        assignments.append((variable, arrays[key]))
  for variable, value in assignments:
    variable.assign(value)
