"""The frozen trunk's outputs, computed once (AdapterDrop's lower blocks).

With `leave_out` = blocks 0..k-1 and fine_tune_mode "adapter", nothing in
the embeddings or those blocks trains. Run without dropout (the one change
of semantics: `AdapterBertEncoder.set_frozen_trunk`), their output for a
text is a function of the text, so training computes it once per example,
in a pre-pass, and every epoch trains blocks k.. from it.

The states are kept at each example's own length (a RaggedTensor
[examples, None, width]); each training batch, made from the token ids
exactly as without the cache (dynamic padding, bucketing and
`group_by_length` unchanged), looks its examples up by index and pads them
to the batch's length. On disk (a tf.data `Dataset.save` directory) the
cache carries the key of what it was computed from: the backbone's frozen
weights, k, the storage dtype and the token ids themselves, so a cache of
other inputs is never read; it is rebuilt.
"""

import glob
import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf
import tf_keras

from keras_adapters.errors import UserInputError
from keras_adapters.saving import faults

STORAGE_DTYPES = ("float32", "float16")
_KEY_FILE = "trunk_cache_key.json"
_BATCH = 64


def trunk_depth(model):
  """k, the blocks of `model`'s frozen trunk; UserInputError if it has none."""
  encoder = model.encoder
  config = getattr(encoder, "adapter_config", None)
  if config is None or config.fine_tune_mode != "adapter" or (
      not config.trunk_depth):
    raise UserInputError(
        "the trunk cache needs fine_tune_mode=adapter with the lowest blocks "
        "left out (e.g. leave_out=[0, 1, 2], --leave_out=0,1,2)")
  return config.trunk_depth


def cache_bytes(features, width, dtype):
  """Bytes the states of `features` (their real tokens) take in memory."""
  tokens = int(np.sum(features["input_mask"]))
  return tokens * width * np.dtype(dtype).itemsize


def available_memory_bytes():
  """MemAvailable of /proc/meminfo (else physical pages free)."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(size, available=None):
  """UserInputError unless `size` bytes fit in 80 % of free memory (the
  size is tokens x width, whatever the trunk's depth)."""
  available = available_memory_bytes() if available is None else available
  if size > 0.8 * available:
    raise UserInputError(
        f"the trunk cache needs {size / 2**30:.2f} GiB but "
        f"{available / 2**30:.2f} GiB of memory is free; store it as "
        "float16 (--trunk_cache_dtype=float16) or train without "
        "--trunk_cache")


def cache_key(model, features, depth, dtype):
  """sha256 of what the states depend on."""
  from keras_adapters.saving.adapter_pack import backbone_fingerprint  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256(json.dumps(dict(
      fingerprint=backbone_fingerprint(model, model.encoder), depth=depth,
      dtype=dtype)).encode())
  for name in sorted(features):
    digest.update(name.encode())
    digest.update(np.ascontiguousarray(features[name]).tobytes())
  return digest.hexdigest()


def compute_states(model, features, depth, dtype="float32", verbose=1):
  """The trunk's output for every example of `features` (token-id arrays),
  at its own length: RaggedTensor [examples, None, width] of `dtype`.
  Batches of similar length, each cut to its longest example."""
  encoder = model.encoder
  encoder.set_frozen_trunk(depth)
  lengths = np.sum(features["input_mask"], axis=1)
  order = np.argsort(-lengths, kind="stable")
  trunk = tf.function(encoder.trunk, reduce_retracing=True)
  rows = [None] * len(lengths)
  progress = tf_keras.utils.Progbar(
      len(lengths), verbose=verbose if os.isatty(1) else 2 * bool(verbose),
      unit_name="example")
  for start in range(0, len(order), _BATCH):
    index = order[start:start + _BATCH]
    longest = int(lengths[index].max())
    states = trunk({k: tf.constant(v[index, :longest])
                    for k, v in features.items()}).numpy().astype(dtype)
    for row, i in enumerate(index):
      rows[i] = states[row, :lengths[i]]
    progress.add(len(index))
  return tf.RaggedTensor.from_row_lengths(np.concatenate(rows),
                                          lengths.astype(np.int64))


def save_states(path, states, key):
  """Writes `states` and `key` to directory `path`, all or nothing (a
  killed write leaves only a `.partial-*` directory, removed next time)."""
  for stale in glob.glob(glob.escape(path) + ".partial-*"):
    shutil.rmtree(stale, ignore_errors=True)
  partial = f"{path}.partial-{os.getpid()}"
  tf.data.Dataset.from_tensor_slices(states).save(partial)
  with open(os.path.join(partial, _KEY_FILE), "w") as f:
    json.dump(dict(key=key, examples=int(states.nrows())), f)
  faults.mid_write("trunk_cache", partial)
  shutil.rmtree(path, ignore_errors=True)
  os.replace(partial, path)


def load_states(path, key):
  """The states saved at `path` if they were computed for `key`, else None."""
  try:
    with open(os.path.join(path, _KEY_FILE)) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return None
  if saved.get("key") != key:
    return None
  ds = tf.data.Dataset.load(path)
  return next(iter(ds.ragged_batch(saved["examples"])))


def trunk_states(model, features, dtype="float32", path=None, verbose=1):
  """The cache for `features`: read from `path` when it holds one of these
  inputs, else computed (after checking it fits in memory) and, with
  `path`, saved there."""
  if dtype not in STORAGE_DTYPES:
    raise UserInputError(f"trunk cache dtype {dtype!r}: choose one of "
                         f"{', '.join(STORAGE_DTYPES)}")
  depth = trunk_depth(model)
  width = model.encoder.get_config()["hidden_size"]
  key = cache_key(model, features, depth, dtype) if path else None
  states = load_states(path, key) if path else None
  if states is not None:
    model.encoder.set_frozen_trunk(depth)
    print(f"Trunk cache: read {path} (blocks 0-{depth - 1}).")
    return states
  size = cache_bytes(features, width, dtype)
  print(f"Trunk cache: {len(features['input_mask'])} examples, "
        f"{size // (width * np.dtype(dtype).itemsize):,} tokens x {width} "
        f"{dtype} = {size / 2**20:.1f} MiB; computing blocks 0-{depth - 1}"
        + (" (the cache there is of other inputs: rebuilt)"
           if path and os.path.exists(path) else "") + ".")
  check_fits(size)
  states = compute_states(model, features, depth, dtype, verbose)
  if path:
    save_states(path, states, key)
  return states


def batches_from_states(batches, states):
  """`batches` of token-id features carrying "example_index", with the
  frozen trunk's output "trunk_output" at each batch's length in its place
  (the ids stay: Keras checks a model's inputs by name; labels and any
  weights unchanged)."""
  width = states.shape[-1]

  def lookup(features, *rest):
    mask = features["input_mask"]
    dense = tf.gather(states, features["example_index"]).to_tensor()
    missing = tf.shape(mask)[1] - tf.shape(dense)[1]
    dense = tf.pad(dense, [[0, 0], [0, missing], [0, 0]])
    dense = tf.ensure_shape(tf.cast(dense, tf.float32),
                            [mask.shape[0], None, width])
    features = {k: v for k, v in features.items() if k != "example_index"}
    return (dict(features, trunk_output=dense), *rest)

  return batches.map(lookup, num_parallel_calls=tf.data.AUTOTUNE)
