"""Exports adapter packs as TF Serving SavedModels (see docs/serving.md).

One pack: the single-task SavedModel of classifier_server.py. Several packs
(or --multitask): one SavedModel over one backbone (multitask.py).

CLI: keras-adapters-export --adapter_pack=P --export_dir=D
(or python -m keras_adapters.serving.export ...)
"""

import os
import sys

# TF's C++ log lines would bury the output and the one-line errors (on CPU,
# its cuInit probe logs an ERROR); TF_CPP_MIN_LOG_LEVEL=0 brings them back.
from keras_adapters.cli.tf_logs import quiet_tf_logs  # pylint: disable=g-import-not-at-top

quiet_tf_logs()

# TensorFlow loads only once the cheap checks pass (see checks.py).
from keras_adapters.errors import UserInputError  # pylint: disable=g-import-not-at-top
from keras_adapters.serving import checks
from keras_adapters.serving.checks import task_is_pair


def export_pack(pack_path, export_dir, pretrained=None, max_seq_length=None,
                is_pair=None, include_text=True, **load_kwargs):
  """Exports the task of the adapter pack at `pack_path` on its backbone
  (`pretrained`, else `load_pretrained(**load_kwargs)`)."""
  from keras_adapters.saving.adapter_pack import read_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.loaders.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  config, _ = read_pack(pack_path)
  is_pair = task_is_pair(config, pack_path) if is_pair is None else is_pair
  if pretrained is None:
    pretrained = load_pretrained(**load_kwargs)
  if max_seq_length:
    config = dict(config, max_seq_length=max_seq_length)
  model = AdapterTextClassifier.load_adapters(
      pack_path, pretrained=pretrained, max_seq_length=config.get(
          "max_seq_length", 128))
  model.task_config["is_pair"] = is_pair
  return model.export(export_dir, include_text=include_text)


def _main():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from keras_adapters.cli import driver_flags
  fl = flags.FLAGS
  packs = list(fl.adapter_pack or [])
  if fl.output_dir:
    packs.append(os.path.join(fl.output_dir, "adapter_pack.npz"))
  if not packs or not fl.export_dir:
    raise UserInputError("pass --export_dir and --adapter_pack (or "
                         "--output_dir of a run_classifier.py training run)")
  # Check what is cheap to check before TensorFlow and the backbone load.
  checks.check_export_dir(fl.export_dir)
  configs, _ = checks.check_packs(packs, multitask=len(packs) > 1 or
                                  fl.multitask, task_names=fl.task_names)
  is_pair = [fl.is_pair if fl.is_pair is not None else task_is_pair(c, p)
             for c, p in zip(configs, packs)]
  from keras_adapters.serving import multitask  # pylint: disable=g-import-not-at-top
  pretrained = driver_flags.load_pretrained_from_flags()
  if len(packs) == 1 and not fl.multitask:
    export_pack(packs[0], fl.export_dir, pretrained, fl.max_seq_length,
                is_pair[0], include_text=not fl.ids_only)
  else:
    multitask.export_multitask(packs, fl.export_dir, pretrained,
                               fl.max_seq_length, include_text=not fl.ids_only,
                               is_pair=is_pair, task_names=fl.task_names)
  print(f"Exported {len(packs)} task(s) to {fl.export_dir}")


def main():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from keras_adapters.cli import driver_flags
  driver_flags.define_model_flags()
  flags.DEFINE_list("adapter_pack", None, "Pack(s) (adapter_pack.npz); "
                    "several = one multi-task SavedModel.")
  flags.DEFINE_string("output_dir", None, "A run_classifier.py output_dir "
                      "(its adapter_pack.npz is exported).")
  flags.DEFINE_string("export_dir", None, "New SavedModel directory.")
  flags.DEFINE_integer("max_seq_length", None, "Default: the pack's (max).")
  flags.DEFINE_bool("multitask", False, "Multi-task export even for 1 pack.")
  flags.DEFINE_list("task_names", None, "Multi-task: the name requests use "
                    "for each pack's task, in --adapter_pack order (default: "
                    "the name each pack records).")
  flags.DEFINE_bool("is_pair", None, "Whether the task takes text pairs; "
                    "only for packs that do not record it (older versions).")
  flags.DEFINE_bool("ids_only", False, "Token-id signature only (no TF Text "
                    "ops; for servers/tools without TF Text).")
  # `python -m` calls this module's file "export.py"; the command is itself.
  program = "export" if sys.argv[0].endswith(".py") else None
  driver_flags.run_with_help(
      driver_flags.main_with_clean_errors(_main, program), __name__,
      driver_flags.__name__)


entry_point = main  # the keras-adapters-export command (setup.py)


if __name__ == "__main__":
  main()
