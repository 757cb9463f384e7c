"""A small layer/model test harness in the spirit of KerasHub's TestCase.

`run_layer_test` checks output shape and the get_config/from_config (and
Keras serialize/deserialize) round trip; `run_saved_model_test` saves a
SavedModel and reloads it in a fresh Python process.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
GLUE_DIR = DATA / "glue_data"


def subprocess_env():
  """Environment for child processes: repo importable, little TF log noise,
  and (as `import keras_adapters` sets it) no Keras 3 loaded by TF, also in
  children that import only TensorFlow (a SavedModel reloaded as a server
  would)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1")
  env["PYTHONPATH"] = os.pathsep.join(
      [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
  return env


def as_numpy(outputs):
  return [np.asarray(t) for t in tf.nest.flatten(outputs)]


def assert_all_equal(actual, expected):
  actual, expected = as_numpy(actual), as_numpy(expected)
  assert len(actual) == len(expected)
  for a, e in zip(actual, expected):
    assert a.shape == e.shape
    np.testing.assert_array_equal(a, e)


def run_layer_test(cls, init_kwargs, input_data, expected_output_shape,
                   call_kwargs=None):
  """Builds `cls(**init_kwargs)`, checks its output shape and that config
  clones (from_config and serialize/deserialize) with the same weights give
  bitwise identical outputs. Returns (layer, output)."""
  call_kwargs = dict(training=False, **(call_kwargs or {}))
  layer = cls(**init_kwargs)
  output = layer(input_data, **call_kwargs)
  first = tf.nest.flatten(output)[0]
  assert tuple(first.shape) == tuple(expected_output_shape)
  assert layer.weights, "layer test needs a layer with weights"

  config = layer.get_config()
  for key, value in init_kwargs.items():
    if isinstance(value, (int, float, str, bool)):
      assert config[key] == value, key
  serialized = tf_keras.layers.serialize(layer)
  json.dumps(serialized)  # the config must be JSON-able (SavedModel metadata)
  clones = [cls.from_config(config), tf_keras.layers.deserialize(serialized)]
  for clone in clones:
    assert type(clone) is cls
    clone(input_data, **call_kwargs)  # builds
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    assert_all_equal(clone(input_data, **call_kwargs), output)
    assert clone.get_config() == config
  return layer, output


def _as_model(model_or_layer, inputs):
  if isinstance(model_or_layer, tf_keras.Model):
    return model_or_layer
  symbolic = tf.nest.map_structure(
      lambda x: tf_keras.Input(shape=x.shape[1:], dtype=x.dtype), inputs)
  return tf_keras.Model(symbolic, model_or_layer(symbolic))


_RELOAD = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tf_keras
from keras_adapters import *  # loads every public class: registers them
# Started before the parent saves (the imports overlap with that); the paths
# come on stdin once the SavedModel is written.
saved, inputs_file, outputs_file = json.loads(sys.stdin.readline())
with np.load(inputs_file) as data:
  meta = json.loads(str(data["__meta__"]))
  if meta["kind"] == "dict":
    inputs = {k: data[k] for k in meta["keys"]}
  elif meta["kind"] == "list":
    inputs = [data[str(i)] for i in range(meta["n"])]
  else:
    inputs = data["x"]
model = tf_keras.models.load_model(saved, compile=False)
outputs = [np.asarray(t) for t in tf.nest.flatten(model(inputs, training=False))]
classes = sorted({type(l).__name__ for l in model._flatten_layers()})
np.savez(outputs_file, *outputs, __classes__=np.array(json.dumps(classes)))
"""


def run_saved_model_test(model_or_layer, inputs, timeout=300):
  """Saves a tf_keras Model (a layer gets wrapped in a functional Model) as a
  SavedModel, reloads it in a fresh Python process and asserts bitwise
  identical outputs. Returns the class names of the reloaded layers."""
  child = subprocess.Popen(
      [sys.executable, "-c", _RELOAD], cwd=REPO, env=subprocess_env(),
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  try:
    model = _as_model(model_or_layer, inputs)
    expected = as_numpy(model(inputs, training=False))
    if isinstance(inputs, dict):
      arrays, meta = dict(inputs), dict(kind="dict", keys=sorted(inputs))
    elif isinstance(inputs, (list, tuple)):
      arrays = {str(i): x for i, x in enumerate(inputs)}
      meta = dict(kind="list", n=len(inputs))
    else:
      arrays, meta = dict(x=inputs), dict(kind="array")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    with tempfile.TemporaryDirectory() as tmp:
      saved = os.path.join(tmp, "saved_model")
      model.save(saved, save_format="tf")
      inputs_file = os.path.join(tmp, "inputs.npz")
      outputs_file = os.path.join(tmp, "outputs.npz")
      np.savez(inputs_file, __meta__=np.array(json.dumps(meta)), **arrays)
      _, stderr = child.communicate(
          json.dumps([saved, inputs_file, outputs_file]) + "\n",
          timeout=timeout)
      assert child.returncode == 0, stderr[-3000:]
      with np.load(outputs_file) as data:
        classes = json.loads(str(data["__classes__"]))
        actual = [data[f"arr_{i}"] for i in range(len(data.files) - 1)]
  finally:
    if child.poll() is None:
      child.kill()
      child.wait()
  assert_all_equal(actual, expected)
  return classes


@functools.lru_cache(maxsize=None)
def minilm():
  """(encoder, vocab_file, do_lower_case) of the real all-MiniLM-L6-v2,
  loaded once per test session. Shared: callers must not modify it."""
  from keras_adapters.loaders.presets import load_preset
  return load_preset()


def mrpc_pairs(n=4, split="dev"):
  """The first `n` (sentence1, sentence2) pairs of the real MRPC `split`."""
  from keras_adapters.data import glue
  examples = glue.get_processor("mrpc").get_examples(
      str(GLUE_DIR / "MRPC"), split)
  return [(e.text_a, e.text_b) for e in examples[:n]]


def tiny_adapter_pack(path, adapter_size=8, labels=("0", "1"),
                      task_name="mrpc", max_seq_length=16):
  """Writes a real adapter pack to `path`, trained one step on a small random
  BERT (not MiniLM): a pack of another backbone, for the mismatch checks.
  Made once per process for each set of arguments, then copied."""
  made = _tiny_adapter_pack(adapter_size, tuple(labels), task_name,
                            max_seq_length)
  shutil.copyfile(made, path)
  return str(path)


@functools.lru_cache(maxsize=None)
def _tiny_adapter_pack(adapter_size, labels, task_name, max_seq_length):
  from keras_adapters.saving import adapter_pack
  from keras_adapters.models.text_classifier import build_classifier
  path = os.path.join(tempfile.mkdtemp(prefix="tiny_pack_"), "pack.npz")
  other = tiny_encoder(max_sequence_length=16, inner_activation="gelu",
                       seed=5)
  model, encoder = build_classifier(other, len(labels), "adapter",
                                    adapter_size=adapter_size)
  model.compile(optimizer="adam", loss=tf_keras.losses.
                SparseCategoricalCrossentropy(from_logits=True))
  ids = np.full([4, 8], 5, np.int32)
  model.fit(dict(input_word_ids=ids, input_mask=np.ones_like(ids),
                 input_type_ids=np.zeros_like(ids)), np.array([0, 1, 0, 1]),
            verbose=0)
  adapter_pack.save_adapter_pack(str(path), model, encoder, dict(
      task_name=task_name, labels=list(labels), is_regression=False,
      fine_tune_mode="adapter", adapter_size=adapter_size, top_k_layers=1,
      max_seq_length=max_seq_length, model="a small random BERT"))
  return str(path)


# --- shared by the test modules (conftest.py exposes them as fixtures) -------

def minilm_cache():
  """The converted default model's cache directory (~/.cache/...)."""
  from keras_adapters.loaders import presets  # pylint: disable=g-import-not-at-top
  return Path(presets.cache_dir(presets.DEFAULT_PRESET))


def tiny_encoder(vocab_size=100, hidden_size=32, num_layers=2,
                 inner_dim=64, max_sequence_length=32, seed=1, **kwargs):
  """A tiny random BERT (BertEncoderV2) made an adapter-ready encoder.
  Random weights: for tests about structure, ops and plumbing, not quality.
  `kwargs` go to BertEncoderV2 (e.g. dropout_rate=0.0, inner_activation)."""
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  from keras_adapters.networks.adapter_bert_encoder import build_encoder  # pylint: disable=g-import-not-at-top
  if seed is not None:
    tf_keras.utils.set_random_seed(seed)
  kwargs.setdefault("num_attention_heads", 2)
  return build_encoder(networks.BertEncoderV2(
      vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
      inner_dim=inner_dim, max_sequence_length=max_sequence_length, **kwargs))


def glue_subset(target, rows, task="MRPC", edit=None):
  """target/: the header and the first `rows[split]` real rows of each split
  of GLUE `task` (UTF-8, no BOM). `edit(split, lines)` may rewrite the lines
  (header first) before they are written. Returns target."""
  target = Path(target)
  target.mkdir(parents=True, exist_ok=True)
  for split, n in rows.items():
    lines = (GLUE_DIR / task / f"{split}.tsv").read_text(
        encoding="utf-8-sig").splitlines()[:n + 1]
    if edit:
      lines = edit(split, lines)
    (target / f"{split}.tsv").write_text("\n".join(lines) + "\n",
                                         encoding="utf-8")
  return target


def driver_env(**extra):
  """Environment of a driver subprocess: repo importable, TF quiet (3: no
  C++ cuInit line on machines with CUDA libraries but no GPU)."""
  env = dict(subprocess_env(), TF_CPP_MIN_LOG_LEVEL="3")
  env.pop("KERAS_ADAPTERS_FAULT", None)  # only where a test sets it
  env.update({k: str(v) for k, v in extra.items()})
  return env


DRIVERS = {
    "run_classifier.py": [str(REPO / "run_classifier.py")],
    "run_squad.py": [str(REPO / "run_squad.py")],
    "export": ["-m", "keras_adapters.serving.export"],
}


def start_driver(program, args, env=None, **popen_kwargs):
  """Starts `program` (a key of DRIVERS) with `args`; returns the Popen
  (text mode, stdout and stderr piped unless given)."""
  popen_kwargs.setdefault("stdout", subprocess.PIPE)
  popen_kwargs.setdefault("stderr", subprocess.PIPE)
  return subprocess.Popen([sys.executable, *DRIVERS[program], *map(str, args)],
                          cwd=REPO, env=env or driver_env(), text=True,
                          **popen_kwargs)


def run_driver(program, args, env=None, timeout=1800):
  """Runs `program` to its end: a CompletedProcess (stdout, stderr text)."""
  return subprocess.run([sys.executable, *DRIVERS[program], *map(str, args)],
                        cwd=REPO, env=env or driver_env(),
                        capture_output=True, text=True, timeout=timeout)


def checked(result):
  """`result` (a CompletedProcess) after asserting a clean exit."""
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  return result


def file_hashes(root):
  """{relative path: sha256} of every file under root."""
  import hashlib  # pylint: disable=g-import-not-at-top
  found = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = hashlib.sha256(
            f.read()).hexdigest()
  return found
