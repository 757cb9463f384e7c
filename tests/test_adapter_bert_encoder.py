"""add_adapters / AdapterBertEncoder on the real all-MiniLM-L6-v2."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks

from harness import assert_all_equal
from harness import minilm
from harness import mrpc_pairs
from harness import run_layer_test
from harness import run_saved_model_test
from keras_adapters import AdapterTextPreprocessor
from keras_adapters.networks.adapter_bert_encoder import AdapterBertEncoder
from keras_adapters.networks.adapter_bert_encoder import add_adapters
from keras_adapters.networks.adapter_bert_encoder import build_encoder

MAX_SEQ_LENGTH = 48


def _relative(variable):
  return variable.name.split("/", 1)[1]


def _run(encoder, inputs):
  outputs = encoder(inputs, training=False)
  return {k: [t.numpy() for t in v] if isinstance(v, list) else v.numpy()
          for k, v in outputs.items()}


@pytest.fixture(scope="module")
def pretrained():
  """The real MiniLM, real MRPC token ids and its outputs on them."""
  encoder, vocab_file, do_lower_case = minilm()
  pairs = mrpc_pairs(4)
  pack = AdapterTextPreprocessor(vocab_file, do_lower_case, MAX_SEQ_LENGTH)
  inputs = pack(tf.constant([a for a, _ in pairs]),
                tf.constant([b for _, b in pairs]))
  mask = inputs["input_mask"].numpy()
  assert 0 < mask.sum(1).min() < MAX_SEQ_LENGTH  # real lengths, some padding
  assert inputs["input_word_ids"].numpy().max() > 1000  # real wordpieces
  return encoder, inputs, _run(encoder, inputs)


@pytest.fixture(scope="module")
def with_adapters_1e_3(pretrained):
  encoder, _, _ = pretrained
  tf_keras.utils.set_random_seed(0)
  return add_adapters(encoder, adapter_size=64, adapter_init_scale=1e-3)


@pytest.mark.parametrize("adapter_type, adapters", [("houlsby", 12),
                                                    ("pfeiffer", 6),
                                                    ("parallel", 6)])
def test_init_scale_zero_outputs_equal_exactly(pretrained, adapter_type,
                                               adapters):
  encoder, inputs, expected = pretrained
  new = add_adapters(encoder, adapter_size=64, adapter_init_scale=0.0,
                     adapter_type=adapter_type)
  assert isinstance(new, AdapterBertEncoder)
  assert len(new.adapters) == adapters
  assert new.get_config()["adapter_config"]["adapter_type"] == adapter_type
  actual = _run(new, inputs)
  for key in ("sequence_output", "pooled_output"):
    assert actual[key].shape == expected[key].shape
    np.testing.assert_array_equal(actual[key], expected[key])
  assert_all_equal(actual["encoder_outputs"], expected["encoder_outputs"])


def test_init_scale_1e_3_outputs_are_close(pretrained, with_adapters_1e_3):
  _, inputs, expected = pretrained
  actual = _run(with_adapters_1e_3, inputs)
  for key in ("sequence_output", "pooled_output"):
    diff = np.abs(actual[key] - expected[key]).max()
    # Measured: max |diff| 2.6e-4 (sequence, |values| up to 6.0) and 2.4e-5
    # (pooled, up to 0.22): the new encoder starts as (nearly) the old one.
    assert 0 < diff < 2e-3, (key, diff)


def test_adapter_encoder_carries_the_pretrained_weights(pretrained,
                                                        with_adapters_1e_3):
  encoder, _, _ = pretrained
  new = with_adapters_1e_3
  adapter_ids = {id(v) for a in new.adapters for v in a.weights}
  assert len(adapter_ids) == 12 * 4
  assert all(a.adapter_size == 64 and a.init_scale == 1e-3
             for a in new.adapters)
  source = {_relative(v): v for v in encoder.weights}
  copied = {_relative(v): v for v in new.weights if id(v) not in adapter_ids}
  assert copied.keys() == source.keys() and len(source) == 103
  for name, variable in source.items():
    assert copied[name] is not variable  # copies, not shared variables
    np.testing.assert_array_equal(copied[name].numpy(), variable.numpy(),
                                  err_msg=name)
  assert new.count_params() == encoder.count_params() + 12 * (
      2 * 384 * 64 + 384 + 64)


def test_get_config_from_config_round_trip(pretrained, with_adapters_1e_3):
  _, inputs, _ = pretrained
  new = with_adapters_1e_3
  config = new.get_config()
  adapters = config["adapter_config"]
  assert (adapters["adapter_size"], adapters["adapter_init_scale"],
          config["num_layers"], config["hidden_size"]) == (64, 1e-3, 6, 384)
  clone = build_encoder(AdapterBertEncoder.from_config(config))
  assert len(clone.adapters) == 12
  assert clone.get_config() == config
  clone.set_weights(new.get_weights())
  assert_all_equal(_run(clone, inputs), _run(new, inputs))


def test_add_adapters_on_default_model_garden_config():
  """BertEncoderV2's default activation is a lambda (approximate gelu) that
  its get_config cannot serialize; add_adapters must still reproduce it."""
  tf_keras.utils.set_random_seed(1)
  bert = networks.BertEncoderV2(vocab_size=50, hidden_size=16, num_layers=2,
                                num_attention_heads=2, inner_dim=32)
  ids = tf.constant([[2, 7, 9, 3, 0], [2, 4, 3, 0, 0]])
  inputs = dict(input_word_ids=ids, input_mask=tf.cast(ids > 0, tf.int32),
                input_type_ids=tf.zeros_like(ids))
  new = add_adapters(bert, adapter_size=4, adapter_init_scale=0.0)
  assert len(new.adapters) == 4
  assert_all_equal(_run(new, inputs), _run(bert, inputs))


@pytest.mark.large  # a fresh process
def test_tiny_encoder_round_trip_and_fresh_process_saved_model():
  ids = np.array([[2, 7, 9, 3, 0, 0], [2, 4, 8, 5, 3, 0]], np.int32)
  inputs = dict(input_word_ids=ids, input_mask=(ids > 0).astype(np.int32),
                input_type_ids=np.array([[0, 0, 0, 1, 1, 1]] * 2, np.int32))
  tf_keras.utils.set_random_seed(2)
  encoder, _ = run_layer_test(
      AdapterBertEncoder,
      dict(adapter_config=dict(adapter_size=4, adapter_init_scale=0.2),
           vocab_size=30,
           hidden_size=16, num_layers=2, num_attention_heads=2, inner_dim=32,
           inner_activation="gelu", max_sequence_length=16,
           type_vocab_size=2),
      inputs, expected_output_shape=(2, 6, 16))
  classes = run_saved_model_test(encoder, inputs)
  assert {"AdapterBertEncoder", "AdapterTransformerBlock",
          "AdapterLayer"} <= set(classes)
