"""Fine-tuning modes: exactly which variables train; the parameter report."""

import numpy as np
import pytest
import tf_keras

from harness import minilm
from harness import tiny_encoder
from keras_adapters import compat
from keras_adapters.config import AdapterConfig
from keras_adapters.models import tuning
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.errors import UserInputError

LAYERS = 2


def _tiny_encoder():
  return tiny_encoder(vocab_size=60, hidden_size=16, num_layers=LAYERS,
                      inner_dim=32, max_sequence_length=16,
                      inner_activation="gelu", type_vocab_size=2, seed=0)


def _names(variables, encoder):
  """Variable names with the encoder's (uniquified) name replaced by
  "encoder", e.g. "encoder/pooler_transform/kernel:0"."""
  prefix = encoder.name + "/"
  return {"encoder/" + v.name[len(prefix):] if v.name.startswith(prefix)
          else v.name for v in variables}


def _expand(scope, sublayers, params=("kernel", "bias")):
  return {f"encoder/{scope}{s}/{p}:0" for s in sublayers for p in params}


def _block(i):
  return f"transformer/layer_{i}/"


HEAD = {"sentence_prediction/logits/kernel:0", "sentence_prediction/logits/bias:0"}
POOLER = _expand("", ["pooler_transform"])
EMBEDDINGS = {f"encoder/{n}/embeddings:0"
              for n in ("word_embeddings", "position_embedding",
                        "type_embeddings")}
EMBEDDING_LN = _expand("", ["embeddings/layer_norm"], ("gamma", "beta"))


def block_layer_norms(i):
  return _expand(_block(i), ["self_attention_layer_norm", "output_layer_norm"],
                 ("gamma", "beta"))


def block_weights(i):
  """Everything of block i except adapters, LayerNorms included."""
  return block_layer_norms(i) | _expand(_block(i), [
      "self_attention/query", "self_attention/key", "self_attention/value",
      "self_attention/attention_output", "intermediate", "output"])


def block_adapters(i):
  return _expand(_block(i), [
      f"{wrapper}/{adapter}/{projection}"
      for wrapper, adapter in (("attention_dropout_adapter", "adapter_attention"),
                               ("output_dropout_adapter", "adapter_ffn"))
      for projection in ("down_project", "up_project")])


def _union(sets):
  return set().union(*sets)


ALL_PLAIN = (HEAD | POOLER | EMBEDDINGS | EMBEDDING_LN
             | _union(block_weights(i) for i in range(LAYERS)))
ALL_LAYER_NORMS = EMBEDDING_LN | _union(block_layer_norms(i)
                                        for i in range(LAYERS))
ALL_ADAPTERS = _union(block_adapters(i) for i in range(LAYERS))

EXPECTED = {
    "full": ALL_PLAIN,
    "head": HEAD | POOLER,
    "layer_norm": HEAD | POOLER | ALL_LAYER_NORMS,
    "adapter": HEAD | POOLER | ALL_LAYER_NORMS | ALL_ADAPTERS,
    ("top_k", 1): HEAD | POOLER | block_weights(1),
    ("top_k", 2): HEAD | POOLER | block_weights(0) | block_weights(1),
}


@pytest.mark.parametrize("mode", list(EXPECTED), ids=str)
def test_exact_trainable_variables(mode):
  name, k = mode if isinstance(mode, tuple) else (mode, 1)
  model, encoder = build_classifier(_tiny_encoder(), num_classes=3,
                                    fine_tune_mode=name, adapter_size=4,
                                    top_k_layers=k)
  all_names = _names(model.weights, encoder)
  assert all_names == ALL_PLAIN | (ALL_ADAPTERS if name == "adapter" else set())
  trainable = _names(model.trainable_variables, encoder)
  assert trainable == EXPECTED[mode]
  assert _names(model.non_trainable_variables, encoder) == (
      all_names - EXPECTED[mode])


def test_modes_can_be_switched_on_one_model():
  model, encoder = build_classifier(_tiny_encoder(), 3, "full")
  for mode in ["head", ("top_k", 2), "layer_norm", ("top_k", 1), "full",
               "head"]:
    name, k = mode if isinstance(mode, tuple) else (mode, 1)
    tuning.set_fine_tune_mode(model, encoder, AdapterConfig(
        fine_tune_mode=name, top_k_layers=k))
    assert _names(model.trainable_variables, encoder) == EXPECTED[mode], mode


def test_parameter_report_for_minilm():
  num_classes = 2  # MRPC
  pretrained = minilm()[0]
  backbone = pretrained.count_params()
  # 30522 x 384 word + 512 x 384 position + 2 x 384 type embeddings + LN,
  # 6 blocks x (4 attention projections, 2 LNs, 384->1536->384 FFN), pooler.
  assert backbone == 22_713_216
  model, encoder = build_classifier(pretrained, num_classes, "adapter",
                                    adapter_size=64)
  report = tuning.parameter_report(model, encoder)
  adapters = 12 * (2 * 384 * 64 + 384 + 64)
  assert adapters == 595_200
  trainable = (adapters + 13 * 2 * 384 + (384 * 384 + 384)
               + 385 * num_classes)
  assert report == dict(
      backbone_params=backbone, adapter_params=adapters,
      trainable_params=trainable,
      total_params=backbone + adapters + 385 * num_classes,
      trainable_percent=pytest.approx(100.0 * trainable / backbone))
  assert 3.3 < report["trainable_percent"] < 3.4
  text = tuning.format_parameter_report(report)
  assert "595,200" in text and f"{trainable:,}" in text


@pytest.mark.parametrize("kwargs, message", [
    (dict(fine_tune_mode="bogus"), "unknown fine_tune_mode 'bogus'"),
    (dict(fine_tune_mode="top_k", top_k_layers=0), r"top_k_layers must be in 1\.\.2"),
    (dict(fine_tune_mode="top_k", top_k_layers=3), r"top_k_layers must be in 1\.\.2"),
    (dict(fine_tune_mode="adapter", adapter_size=0), "adapter_size must be >= 1"),
])
def test_bad_modes_raise_user_input_error(kwargs, message):
  with pytest.raises(UserInputError, match=message):
    build_classifier(_tiny_encoder(), 2, **kwargs)


def test_set_fine_tune_mode_errors():
  model, encoder = build_classifier(_tiny_encoder(), 2, "full")
  with pytest.raises(UserInputError, match="needs an encoder with adapters"):
    tuning.set_fine_tune_mode(model, encoder, AdapterConfig())
  with pytest.raises(UserInputError, match="unknown fine_tune_mode"):
    tuning.set_fine_tune_mode(model, encoder,
                              AdapterConfig(fine_tune_mode="adapters"))
  # A rejected mode leaves the previous one in place.
  assert _names(model.trainable_variables, encoder) == EXPECTED["full"]


@pytest.mark.parametrize("mode", ["full", "head", "adapter"])
def test_the_encoder_passed_in_is_left_as_it_was(mode):
  pretrained = _tiny_encoder()
  before = [w.copy() for w in pretrained.get_weights()]
  attention = [type(compat.self_attention(b))
               for b in pretrained.transformer_layers]
  model, encoder = build_classifier(pretrained, 2, mode)
  assert encoder is not pretrained
  assert all(l.trainable for l in compat.flatten_layers(pretrained))
  assert [type(compat.self_attention(b))
          for b in pretrained.transformer_layers] == attention
  model.compile(optimizer="sgd", loss=tf_keras.losses.
                SparseCategoricalCrossentropy(from_logits=True))
  ids = np.full([4, 6], 5, np.int32)
  model.fit(dict(input_word_ids=ids, input_mask=np.ones_like(ids),
                 input_type_ids=np.zeros_like(ids)), np.array([0, 1, 0, 1]),
            verbose=0)
  assert all(np.array_equal(a, b)
             for a, b in zip(before, pretrained.get_weights()))
  if mode == "full":  # while the model's own copy trained
    assert not all(np.array_equal(a, b)
                   for a, b in zip(before, encoder.get_weights()))
