"""GLUE through tensorflow-datasets: `--tfds_name=glue/mrpc` in the drivers.

`read_examples` turns a prepared TFDS `glue/<config>` dataset (prepared by
TFDS itself, e.g. on GCS for Cloud TPU, or by `prepare` below) into the same
`glue.Example`s, in the same order, as the TSV reader. `prepare` builds that
TFDS dataset offline from the local GLUE TSVs, with TFDS's own feature names
and label classes (sentence1/sentence2/label/idx, ...), via
`tfds.dataset_builders.store_as_tfds_dataset`: no download. Command line:

  python -m keras_adapters.data.tfds_glue --glue_dir=../shared/data/glue_data \
    --tasks=mrpc,rte --tfds_data_dir=/tmp/tensorflow_datasets
"""

import os
import typing

from keras_adapters.data import glue
from keras_adapters.errors import UserInputError

VERSION = "2.0.0"  # TFDS glue's version: tfds.builder("glue/...") reads it


class _Config(typing.NamedTuple):
  task: str  # glue.py task name
  folder: str  # folder under glue_data
  texts: tuple  # TFDS text features: text_a[, text_b]
  classes: typing.Optional[tuple]  # TFDS label names; None: float score
  tsv_labels: typing.Optional[tuple]  # the TSV label of each TFDS class
  splits: tuple = ("train", "validation", "test")  # TFDS train/dev/test


# TFDS config name -> _Config, from the one table of GLUE facts (glue.py).
CONFIGS = {
    s.tfds: _Config(task, s.folder, s.tfds_texts, s.tfds_classes,
                    s.tfds_tsv_labels, s.tfds_splits)
    for task, s in glue._GLUE.items() if s.tfds  # pylint: disable=protected-access
}
SPLITS = dict(train=0, dev=1, test=2)  # glue.py split -> index in .splits


def config_of(tfds_name):
  """"glue/mrpc" (or "glue/mrpc:2.0.0") -> (config name, _Config)."""
  name = tfds_name.split(":")[0]
  family, _, config = name.partition("/")
  if family != "glue" or config not in CONFIGS:
    raise UserInputError(f"--tfds_name={tfds_name!r} is not supported; use "
                         "one of " + ", ".join(f"glue/{c}" for c in CONFIGS))
  return config, CONFIGS[config]


def _features(config):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  features = {t: tfds.features.Text() for t in config.texts}
  features["label"] = (np.float32 if config.classes is None else
                       tfds.features.ClassLabel(names=list(config.classes)))
  features["idx"] = np.int32
  return tfds.features.FeaturesDict(features)


def _records(config, examples):
  for i, e in enumerate(examples):
    record = {config.texts[0]: e.text_a, "idx": i}
    if len(config.texts) > 1:
      record[config.texts[1]] = e.text_b
    if e.label is None:  # unlabeled test split: TFDS glue stores -1
      record["label"] = -1.0 if config.classes is None else -1
    elif config.classes is None:
      record["label"] = float(e.label)
    else:
      record["label"] = config.tsv_labels.index(e.label)
    yield i, record  # (key, example), as store_as_tfds_dataset wants


def prepare(tfds_name, glue_task_dir, tfds_data_dir):
  """Writes TFDS `glue/<config>` into tfds_data_dir from the TSVs in
  glue_task_dir (train/dev/test); returns the prepared directory."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  name, config = config_of(tfds_name)
  processor = glue.get_processor(config.task)
  splits = {config.splits[i]: list(_records(
      config, processor.get_examples(glue_task_dir, split)))
            for split, i in SPLITS.items()}
  target = os.path.join(tfds_data_dir, "glue", name, VERSION)
  if os.path.exists(os.path.join(target, "dataset_info.json")):
    raise UserInputError(f"{target} is already prepared; delete it to "
                         "prepare it again")
  builder = tfds.dataset_builders.store_as_tfds_dataset(
      name="glue", config=name, version=VERSION, features=_features(config),
      split_datasets=splits, data_dir=tfds_data_dir,
      description=f"GLUE {name}, prepared offline from {glue_task_dir}",
      disable_shuffling=True)
  return builder.data_dir


def read_examples(tfds_name, tfds_data_dir, split):
  """The examples of split "train"/"dev"/"test" of a prepared TFDS GLUE
  dataset, as `glue.Example`s in TSV order (TFDS shuffles; `idx` is the
  TSV row). Never downloads: an unprepared dataset is an error."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  name, config = config_of(tfds_name)
  version = tfds_name.partition(":")[2] or VERSION
  path = os.path.join(tfds_data_dir or "", "glue", name, version)
  if not tfds_data_dir or not tf.io.gfile.exists(
      os.path.join(path, "dataset_info.json")):
    raise UserInputError(
        f"TFDS glue/{name} {version} is not prepared in --tfds_data_dir="
        f"{tfds_data_dir}; prepare it offline with python -m "
        f"keras_adapters.data.tfds_glue --tasks={name} --tfds_data_dir=DIR")
  builder = tfds.builder_from_directory(path)
  tfds_split = config.splits[SPLITS[split]]
  if tfds_split not in builder.info.splits:
    raise UserInputError(f"{path} has no {tfds_split} split (has "
                         f"{', '.join(builder.info.splits)})")
  rows = sorted(tfds.as_numpy(builder.as_dataset(split=tfds_split)),
                key=lambda r: int(r["idx"]))
  examples = []
  for r in rows:
    texts = [r[t].decode("utf-8") for t in config.texts]
    label = r["label"]
    if split == "test":  # TFDS glue stores -1: no public test labels
      label = None
    elif config.classes is None:
      label = float(label)
    else:
      label = config.tsv_labels[int(label)]
    examples.append(glue.Example(f"{split}-{int(r['idx'])}", texts[0],
                                 texts[1] if len(texts) > 1 else None, label))
  if not examples:
    raise UserInputError(f"{path}: split {tfds_split} is empty")
  return examples


def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  try:
    for task in f.tasks:
      _, config = config_of(f"glue/{task}")
      print(prepare(f"glue/{task}", os.path.join(f.glue_dir, config.folder),
                    f.tfds_data_dir))
  except UserInputError as e:
    print(f"tfds_glue: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("glue_dir", "../shared/data/glue_data", "Folder with "
                      "the GLUE task folders (MRPC/, RTE/, ...).")
  flags.DEFINE_list("tasks", ["cola", "sst2", "mrpc", "stsb", "rte"],
                    "TFDS glue configs to prepare.")
  flags.DEFINE_string("tfds_data_dir", None, "TFDS data_dir to write into.")
  flags.mark_flag_as_required("tfds_data_dir")
  app.run(main)
