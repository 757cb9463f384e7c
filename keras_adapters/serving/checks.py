"""What the exporter checks before TensorFlow loads: the export directory
and the packs (read with NumPy). No TensorFlow import here, so that
`python -m keras_adapters.serving.export` reports bad input at once."""

import os

from keras_adapters.config import ADAPTER_TYPES
from keras_adapters.config import check_task_name
from keras_adapters.errors import UserInputError
from keras_adapters.saving import adapter_pack


def check_export_dir(export_dir):
  """Refuses an export_dir holding anything (exports never overwrite)."""
  if os.path.exists(os.path.join(export_dir, "saved_model.pb")):
    raise UserInputError(f"{export_dir} already holds a SavedModel; pass a "
                         "new (e.g. versioned) --export_dir")
  if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or
                                     os.listdir(export_dir)):
    raise UserInputError(f"{export_dir} exists and is not an empty "
                         "directory; pass a new (e.g. versioned) --export_dir")


def task_is_pair(config, path="the pack"):
  """Whether the pack's task takes two texts: its "is_pair", or for a pack
  saved before it recorded that, the GLUE task's layout."""
  if config.get("is_pair") is not None:
    return bool(config["is_pair"])
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  task = config.get("task_name") or "generic"
  if glue.canonical_task_name(task) == "generic":
    raise UserInputError(f"{path} does not record whether its task takes one "
                         "text or a pair (saved by an older version); pass "
                         "--is_pair or --nois_pair")
  return glue.get_processor(task).is_pair


def task_name_of(config):
  """The name a multi-task SavedModel serves a pack's task by: the name it
  was trained with, else its GLUE task's; "" for an unnamed custom task."""
  task = config.get("task_name") or ""
  return config.get("name") or ("" if task == "generic" else task)


def check_packs(packs, multitask=True, task_names=None):
  """(configs, arrays) of the packs; for a multi-task export, errors unless
  they are adapter packs of distinct named tasks with one adapter type and
  size. `task_names` (one per pack) overrides the names the packs record;
  each config's "name" is the one served."""
  if not packs:
    raise UserInputError("multi-task export needs at least one pack")
  configs, arrays = zip(*[adapter_pack.read_pack(p) for p in packs])
  if not multitask:
    return configs, arrays
  if task_names and len(task_names) != len(packs):
    raise UserInputError(f"{len(task_names)} task names for {len(packs)} "
                         "packs; pass one name per pack, in their order")
  names = [check_task_name(n) for n in task_names] if task_names else [
      task_name_of(c) for c in configs]
  for path, name in zip(packs, names):
    if not name:
      raise UserInputError(
          f"{path}: its task has no name (a custom task); name it in "
          "training (from_preset(..., name='spam'), run_classifier.py "
          "--custom_task_name=spam) or at export (--task_names=spam,...)")
  if len(set(names)) != len(names):
    raise UserInputError(f"packs need distinct task names, got {names}; "
                         "one pack per task (rename with --task_names)")
  configs = tuple(dict(c, name=n) for c, n in zip(configs, names))
  for path, c in zip(packs, configs):
    if c.get("fine_tune_mode", "adapter") != "adapter":
      raise UserInputError(f"{path}: fine_tune_mode={c['fine_tune_mode']}; "
                           "multi-task export takes adapter packs only "
                           "(export other modes one task per SavedModel)")
    for key, default in (("adapter_type", ADAPTER_TYPES[0]),
                         ("adapter_size", None), ("leave_out", [])):
      if c.get(key, default) != configs[0].get(key, default):
        raise UserInputError(f"{path}: {key} {c.get(key, default)} != "
                             f"{configs[0].get(key, default)} of {packs[0]}; "
                             f"packs must share the {key.replace('_', ' ')}")
  return configs, arrays
