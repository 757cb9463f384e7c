"""The contract with upstream internals: every private Model Garden, tf_keras
and TensorFlow name keras_adapters/compat.py relies on exists in the
installed (pinned) versions, compat is the one module that reaches them, and
a missing one is an error naming it, never a silent skip."""

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys

import pytest
import tensorflow as tf
import tf_keras
from official.nlp import optimization
from official.nlp.modeling import layers as nlp_layers
from official.nlp.modeling import models

from harness import REPO
from harness import tiny_encoder
from keras_adapters import compat
from keras_adapters.layers.matmul_attention import MatmulAttention
from keras_adapters.loaders import model_garden

COMPAT = REPO / "keras_adapters" / "compat.py"
# Private upstream accesses outside compat.py that are still to move into it
# (issue #40): file -> names. Only these may remain.
PENDING = {}


def _first(encoder, cls):
  """The first sub-layer of `encoder` that is a `cls`, found through public
  tracking (not through the private names under test)."""
  return next(m for m in encoder.submodules if isinstance(m, cls))


@pytest.fixture(scope="module")
def owners():
  """A real object for each owner in compat.PRIVATE_NAMES."""
  encoder = tiny_encoder(num_layers=1, inner_activation="gelu")
  dropout = _first(encoder, tf_keras.layers.Dropout)
  classifier = models.BertClassifier(encoder, num_classes=2)
  return {
      "BertEncoderV2": encoder,
      "PositionEmbedding": _first(encoder, nlp_layers.PositionEmbedding),
      "TransformerEncoderBlock": encoder.transformer_layers[0],
      "BertClassifier": classifier,
      "squad_evaluate_v1_1": importlib.import_module(
          "official.nlp.tools.squad_evaluate_v1_1"),
      "MultiHeadAttention": _first(encoder, tf_keras.layers.MultiHeadAttention),
      "Layer": encoder.transformer_layers[0],
      "Model": classifier,
      "BaseRandomLayer": dropout,
      "RandomGenerator": next(v for v in vars(dropout).values()
                              if type(v).__name__ == "RandomGenerator"),
      "OptimizerV2": optimization.create_optimizer(
          1e-3, num_train_steps=10, num_warmup_steps=1,
          optimizer_type="adamw"),
      "functional_saver": importlib.import_module(compat.FUNCTIONAL_SAVER),
  }


def test_every_private_name_compat_relies_on_exists(owners):
  assert set(owners) == set(compat.PRIVATE_NAMES)
  gone = [f"{owner}.{name} (installed {dist} "
          f"{compat.installed_version(dist)}, compat written for "
          f"{compat.TESTED_VERSIONS[dist]})"
          for owner, (dist, names) in compat.PRIVATE_NAMES.items()
          for name in names if not hasattr(owners[owner], name)]
  assert not gone, "missing private upstream names: " + "; ".join(gone)


def test_the_hooks_compat_relies_on_are_still_used(monkeypatch):
  """MultiHeadAttention still routes through `_compute_attention` (which
  MatmulAttention overrides) and fit() still tells evaluate() that it
  validates (FIT_EVAL_KWARG)."""
  compat.check_attention_hook()
  calls = []
  original = MatmulAttention._compute_attention  # pylint: disable=protected-access
  monkeypatch.setattr(MatmulAttention, "_compute_attention",
                      lambda *a, **k: calls.append(1) or original(*a, **k))
  x = tf.ones([1, 3, 8])
  MatmulAttention(num_heads=2, key_dim=4)(x, x)
  assert calls, (f"tf_keras {compat.installed_version('tf_keras')}: "
                 "MultiHeadAttention.call no longer calls _compute_attention")
  assert compat.FIT_EVAL_KWARG in inspect.getsource(tf_keras.Model.fit), (
      f"tf_keras {compat.installed_version('tf_keras')}: Model.fit no "
      f"longer passes {compat.FIT_EVAL_KWARG} to evaluate()")


def test_compat_lists_every_private_name_it_reaches():
  """compat.py reaches private names only as strings that PRIVATE_NAMES
  lists (so the test above checks them all), never as `obj._name`."""
  tree = ast.parse(COMPAT.read_text(encoding="utf-8"))
  in_fstrings = {id(c) for j in ast.walk(tree) if isinstance(j, ast.JoinedStr)
                 for c in ast.walk(j)}
  listed = {n for _, names in compat.PRIVATE_NAMES.values() for n in names}
  strings = {n.value for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and id(n) not in in_fstrings
             and re.fullmatch(r"_[a-z][a-z0-9_]*", n.value)}
  attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and n.attr.startswith("_") and not n.attr.startswith("__")}
  assert strings - listed - {compat.FIT_EVAL_KWARG} == set()
  assert not attributes
  assert {"_" + p for p in compat.BLOCK_PARTS} <= listed


def test_compat_is_the_one_module_that_reaches_them():
  names = {n for _, names in compat.PRIVATE_NAMES.values() for n in names}
  names.add(compat.FIT_EVAL_KWARG)
  pattern = re.compile(r"""[.'"](%s)\b|\btensorflow\.python\b|"""
                       r"""\btf_keras\.src\b""" % "|".join(sorted(names)))
  found = {}
  for path in sorted((REPO / "keras_adapters").rglob("*.py")):
    if path != COMPAT:
      rel = str(path.relative_to(REPO))
      hits = {m.group(1) or m.group(0) for m in pattern.finditer(
          path.read_text(encoding="utf-8"))}
      if hits - PENDING.get(rel, set()):
        found[rel] = sorted(hits - PENDING.get(rel, set()))
  assert not found, f"use keras_adapters.compat instead: {found}"


def test_compat_imports_without_tensorflow():
  result = subprocess.run(
      [sys.executable, "-c", "import sys, keras_adapters.compat; "
       "print(sorted(m for m in ('tensorflow', 'tf_keras', 'official') "
       "if m in sys.modules))"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
  assert result.stdout.strip() == "[]"


def test_a_missing_name_is_an_error_naming_it_and_the_version():
  dense = tf_keras.layers.Dense(2)
  version = compat.installed_version("tf-models-official")
  with pytest.raises(compat.UpstreamAPIError,
                     match=f"^TransformerEncoderBlock has no attribute "
                     f"'_attention_layer': tf-models-official {version} is "
                     "installed and keras_adapters.compat was written for "
                     r"2\.20\.0, so an upgrade"):
    compat.block_part(dense, "attention_layer")
  # Setting it would create a new attribute that the parent's call() never
  # runs: refused too.
  with pytest.raises(compat.UpstreamAPIError, match="'_output_dropout'"):
    compat.set_block_part(dense, "output_dropout", tf_keras.layers.Dropout(0))
  assert not hasattr(dense, "_output_dropout")
  with pytest.raises(compat.UpstreamAPIError, match="'_flatten_layers'"):
    compat.flatten_layers(object())


def test_a_built_dropout_without_its_generator_is_an_error():
  layer = tf_keras.layers.Dropout(0.1)
  generator = next(v for v in vars(layer).values()
                   if type(v).__name__ == "RandomGenerator")
  assert compat.dropout_generator(layer) is None  # not built: no generator yet
  layer.build((None, 2))
  assert compat.dropout_generator(layer) is None  # legacy RNG: None
  del generator._generator  # pylint: disable=protected-access
  with pytest.raises(compat.UpstreamAPIError,
                     match="^RandomGenerator has no attribute '_generator'"):
    compat.dropout_generator(layer)


def _model_garden_checkpoint(tmp_path, holder=None):
  """A tiny BertEncoderV2's tf.train.Checkpoint (of `holder` instead if
  given) and the encoder's config file."""
  encoder = tiny_encoder(num_layers=1, inner_activation="gelu")
  prefix = str(tmp_path / "encoder")
  tf.train.Checkpoint(encoder=holder(encoder) if holder else encoder).write(
      prefix)
  config = tmp_path / "encoder.json"
  config.write_text(json.dumps(encoder.get_config(), indent=1))
  return prefix, str(config)


def test_model_garden_errors_if_the_encoder_lacks_transformer_layers(
    tmp_path, monkeypatch):
  """A Model Garden without BertEncoderV2._transformer_layers: the layer
  count check (keyed by that name) errors instead of being skipped."""
  prefix, config = _model_garden_checkpoint(tmp_path)
  assert model_garden.load_model_garden_checkpoint(prefix, config) is not None
  build = model_garden.build_encoder

  def build_without_the_attribute(encoder):
    build(encoder)
    delattr(encoder, compat.TRANSFORMER_LAYERS_ATTR)
    return encoder

  monkeypatch.setattr(model_garden, "build_encoder",
                      build_without_the_attribute)
  with pytest.raises(compat.UpstreamAPIError,
                     match="^BertEncoderV2 has no attribute "
                     "'_transformer_layers': tf-models-official"):
    model_garden.load_model_garden_checkpoint(prefix, config)


def test_model_garden_errors_if_the_checkpoint_names_the_blocks_otherwise(
    tmp_path):
  """A checkpoint whose blocks are saved under another attribute name (a
  Model Garden that renamed _transformer_layers): one line naming it, not a
  skipped layer count."""
  def renamed(encoder):
    holder = tf.Module()
    holder.blocks = list(encoder.transformer_layers)
    holder.pooler = encoder.pooler_layer
    return holder

  prefix, config = _model_garden_checkpoint(tmp_path, renamed)
  with pytest.raises(model_garden.UserInputError) as raised:
    model_garden.load_model_garden_checkpoint(prefix, config)
  message = str(raised.value)
  assert "\n" not in message
  assert message.startswith(
      f"{prefix} holds no encoder/_transformer_layers/ variables"), message
  assert "BertEncoderV2._transformer_layers" in message
