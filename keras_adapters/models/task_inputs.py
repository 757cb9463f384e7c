"""What `AdapterTextClassifier` accepts: model sources, texts, labels."""

import math
import os
import reprlib

import numpy as np
import tensorflow as tf
import tf_keras

from keras_adapters.data import glue
from keras_adapters.config import ADAPTER_CONFIG_KEYS
from keras_adapters.errors import UserInputError
from keras_adapters.models.text_preprocessor import encode_labels


def model_source(preset):
  """`load_pretrained` keywords for a preset name or a model path."""
  path = str(preset)
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return dict(hub_module=path)
  if os.path.isfile(os.path.join(path, "model.safetensors")):
    return dict(init_checkpoint=path)
  if os.path.isdir(path) or os.path.isfile(path + ".index"):
    return dict(init_checkpoint=path)  # TF1 or Model Garden checkpoint
  return dict(preset=path)


def _strings(texts, what):
  if isinstance(texts, str) or not hasattr(texts, "__len__"):
    raise UserInputError(f"{what} must be a list of strings, got "
                         f"{type(texts).__name__}")
  texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
  for i, text in enumerate(texts):
    if not isinstance(text, str):
      raise UserInputError(
          f"{what}[{i}] is {reprlib.repr(text)} ({type(text).__name__}), not "
          "a string; pass str texts only (convert, fill in or drop that "
          "example)")
  return texts


def split_texts(x):
  """(texts_a, texts_b or None) from texts or a (texts_a, texts_b) pair."""
  if x is None:
    raise UserInputError("pass the texts as x")
  is_pair = (isinstance(x, tuple) and len(x) == 2 and
             not isinstance(x[0], (str, bytes)))
  if not is_pair:
    return _strings(x, "x"), None
  texts_a, texts_b = _strings(x[0], "texts_a"), _strings(x[1], "texts_b")
  if len(texts_a) != len(texts_b):
    raise UserInputError(f"texts_a has {len(texts_a)} texts, texts_b "
                         f"{len(texts_b)}; pass one text_b per text_a")
  return texts_a, texts_b


def split_validation(x, y, validation_data, validation_split):
  """(x, y, validation_data) of `fit(..., validation_split=f)`: as Keras
  splits arrays, the last fraction f of the texts and labels (taken before
  any shuffling) validates and the rest trains. A given `validation_data`
  wins, as in Keras."""
  if not validation_split or validation_data is not None:
    return x, y, validation_data
  if isinstance(x, tf.data.Dataset):
    raise UserInputError("validation_split cannot split a dataset; pass "
                         "validation_data=(texts, labels) or a dataset")
  if (isinstance(validation_split, bool) or
      not isinstance(validation_split, (int, float)) or
      not 0 < validation_split < 1):
    raise UserInputError(f"validation_split={validation_split!r} must be a "
                         "fraction between 0 and 1, e.g. 0.1")
  texts_a, texts_b = split_texts(x)
  n = len(texts_a)
  if y is None or len(y) != n:
    check_training_size(n, y, 1)  # raises: one label per text
  split_at = int(math.floor(n * (1.0 - validation_split)))
  if not 0 < split_at < n:
    raise UserInputError(f"validation_split={validation_split} of {n} texts "
                         f"leaves {split_at} to train and {n - split_at} to "
                         "validate; pass more texts or another fraction")
  y = y if isinstance(y, list) else np.asarray(y)

  def part(cut):
    return texts_a[cut] if texts_b is None else (texts_a[cut], texts_b[cut])

  return (part(slice(split_at)), y[:split_at],
          (part(slice(split_at, None)), y[split_at:]))


def position_count(encoder):
  """The encoder's position embeddings (its config's max_sequence_length,
  as Model Garden's BERT encoders have it), or None if it does not say."""
  positions = encoder.get_config().get("max_sequence_length")
  return positions if isinstance(positions, int) else None


def check_positions(max_seq_length, encoder):
  """Refuses a max_seq_length longer than the encoder has positions."""
  positions = position_count(encoder)
  if (positions is not None and isinstance(max_seq_length, int) and
      max_seq_length > positions):
    raise UserInputError(
        f"max_seq_length={max_seq_length} exceeds this model's {positions} "
        f"positions (its encoder's max_sequence_length); pass "
        f"max_seq_length={positions} or less, e.g. 128")
  return max_seq_length


def check_training_size(num_texts, y, batch_size):
  """Full batches per epoch, or an error saying why there are none."""
  if y is None or len(y) != num_texts:
    raise UserInputError(f"pass one label per text as y ({num_texts} texts, "
                         f"{'no' if y is None else len(y)} labels)")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise UserInputError(f"batch_size {batch_size!r} must be a positive "
                         "integer")
  if num_texts < batch_size:
    raise UserInputError(f"{num_texts} training texts are fewer than one "
                         f"batch of {batch_size}; lower batch_size")
  return num_texts // batch_size


def encode(y, config):
  """Labels as class indices (or floats), checked against the task."""
  if y is None:
    raise UserInputError("pass the labels as y")
  values = list(np.asarray(y).tolist()) if not isinstance(y, list) else y
  indices = encode_labels(values, config["labels"], config["is_regression"])
  if config["labels"] is None and not config["is_regression"]:
    num_classes = config["num_classes"]
    for i, v in enumerate(indices):
      if not str(v).isdigit() or int(v) >= num_classes:
        raise UserInputError(f"example {i}: label {v!r} is not a class index "
                             f"0..{num_classes - 1}; pass labels=[...] to the "
                             "classifier for other labels")
      indices[i] = int(v)
  return indices


def holds_ids(x):
  """True for input that is already BERT ids (a dict of id arrays, a
  dataset of int features or a DatasetCreator): it goes to Keras untouched."""
  if isinstance(x, (dict, tf_keras.utils.experimental.DatasetCreator)):
    return True
  if isinstance(x, (np.ndarray, tf.Tensor)):
    return np.asarray(x).dtype.kind in "iuf"
  if isinstance(x, tf.data.Dataset):
    first = tf.nest.flatten(x.element_spec)[0]
    return first.dtype != tf.string
  return False


def map_strings(dataset, model):
  """A dataset of (texts, labels) or ((texts_a, texts_b), labels) string
  batches -> (BERT inputs, label indices)."""
  table = None
  if model.labels:
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(model.labels), tf.range(len(model.labels))), -1)

  def convert(texts, labels=None):
    pair = isinstance(texts, (tuple, list))
    inputs = model.preprocessor(*texts) if pair else model.preprocessor(texts)
    if labels is None:
      return inputs
    if table is not None and labels.dtype == tf.string:
      labels = table.lookup(labels)
    return inputs, labels

  return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def count(dataset):
  """Batches per epoch of a finite dataset (iterates once if TF can't tell)."""
  if not isinstance(dataset, tf.data.Dataset):
    return None
  n = int(dataset.cardinality())
  if n == tf.data.INFINITE_CARDINALITY:
    raise UserInputError("an infinite dataset needs steps_per_epoch")
  if n >= 0:
    return n
  return int(dataset.reduce(0, lambda c, _: c + 1))


def metric_task(config):
  """The processor whose metrics `evaluate` reports."""
  if config.get("task_name") and config["task_name"] != "generic":
    return glue.get_processor(config["task_name"])
  if config["is_regression"]:
    return glue.get_processor("generic", is_regression=True)
  labels = config["labels"] or [str(i) for i in range(config["num_classes"])]
  return glue.get_processor("generic", label_list=labels)


def settings_from_pack(config):
  """Classifier keywords that rebuild the model a pack was trained on."""
  settings = {k: config[k] for k in ("labels", "name") + ADAPTER_CONFIG_KEYS
              if config.get(k) is not None}
  task = config.get("task_name") or ""
  if task and task != "generic":
    settings["task_name"] = task
  if config.get("is_regression"):
    settings["regression"] = True
    settings.pop("labels", None)
  elif "labels" not in settings and "task_name" not in settings:
    settings["num_classes"] = config.get("num_classes", 2)
  return settings
