"""AdapterFusion against an independent NumPy fusion, and in every placement
of AdapterTransformerBlock against the plain adapter it fuses."""

import numpy as np
import pytest
from scipy import special
import tensorflow as tf
import tf_keras

from harness import run_layer_test
from harness import run_saved_model_test
from keras_adapters.layers.adapter_fusion import AdapterFusion
from keras_adapters.layers.adapter_layer import AdapterLayer
from keras_adapters.layers.adapter_transformer_block import AdapterTransformerBlock

D = 16
BLOCK = dict(num_attention_heads=2, inner_dim=32, inner_activation="gelu")


def _inputs(seed=0, shape=(2, 7, D)):
  return tf.random.stateless_normal(shape, seed=[seed, 5])


def _far_from_identity(layer, seed=7, scale=0.5):
  """Gives every kernel and bias of `layer` random values of std `scale`,
  so that the adapters' updates and the fusion's scores are not tiny."""
  rng = np.random.default_rng(seed)
  for w in layer.trainable_weights + layer.non_trainable_weights:
    if "value" not in w.name:
      w.assign(rng.normal(0, scale, w.shape).astype(np.float32))


def _gelu(x):
  return 0.5 * x * (1 + special.erf(x / np.sqrt(2)))


def _numpy_fusion(fusion, x, residual):
  """Pfeiffer et al. (2021), eq. (1)-(3), written out in NumPy."""
  get = lambda layer: [w.numpy() for w in layer.weights]
  updates = []
  for adapter in fusion.adapters:
    wd, bd = get(adapter.down_project)
    wu, bu = get(adapter.up_project)
    updates.append(_gelu(x @ wd + bd) @ wu + bu)
  updates = np.stack(updates, axis=-2)  # [batch, tokens, N, d]
  wq, bq = get(fusion.query)
  wk, bk = get(fusion.key)
  (wv,) = get(fusion.value)
  query = x @ wq + bq
  keys = updates @ wk + bk
  weights = special.softmax((query[..., None, :] * keys).sum(-1), axis=-1)
  return residual + (weights[..., None] * updates).sum(-2) @ wv, weights


def test_matches_a_numpy_fusion_and_mixes_all_adapters():
  x = _inputs()
  residual = _inputs(seed=1)
  fusion = AdapterFusion(adapter_sizes=[8, 4, 6])
  fusion(x)
  _far_from_identity(fusion)
  fusion.value.kernel.assign(
      np.eye(D) + np.random.default_rng(3).normal(0, 0.1, (D, D)))
  expected, weights = _numpy_fusion(fusion, x.numpy(), residual.numpy())
  np.testing.assert_allclose(fusion(x, residual=residual), expected,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(fusion.mix(x)[1], weights, rtol=1e-5, atol=1e-6)
  # Not a degenerate case: tokens weigh the adapters differently, and no
  # adapter gets (almost) all of the weight everywhere.
  assert weights.std(axis=(0, 1)).min() > 0.01
  assert weights.mean(axis=(0, 1)).max() < 0.9


def _assert_close(actual, expected):
  # A softmax over one score is 1 to within an ulp (TF's gives 0.99999994 for
  # some), so "the same" is to float32 rounding, not bitwise.
  np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_fusing_one_adapter_is_that_adapter():
  x = _inputs()
  adapter = AdapterLayer(adapter_size=8, init_scale=0.3)
  fusion = AdapterFusion(adapter_sizes=[8])
  fusion(x)
  adapter(x)
  fusion.adapters[0].set_weights(adapter.get_weights())
  _far_from_identity(fusion.query)
  _assert_close(fusion(x), adapter(x))
  _assert_close(fusion(x, residual=2 * x, scale=4.0),
                adapter(x, residual=2 * x, scale=4.0))
  assert np.abs(adapter(x) - x).max() > 0.1  # a far-from-identity adapter


def test_value_starts_at_identity_and_is_pulled_back_to_it():
  fusion = AdapterFusion(adapter_sizes=[4, 4], value_regularization=0.01)
  fusion(_inputs())
  np.testing.assert_array_equal(fusion.value.kernel.numpy(), np.eye(D))
  assert float(tf.add_n(fusion.losses)) == 0.0
  kernel = np.eye(D)
  kernel[2, 5] = 3.0
  kernel[1, 1] = 0.5
  fusion.value.kernel.assign(kernel)
  assert float(tf.add_n(fusion.losses)) == pytest.approx(0.01 * (9 + 0.25))


def test_parameter_count():
  fusion = AdapterFusion(adapter_sizes=[8, 2])
  fusion(_inputs())
  adapters = (2 * D * 8 + D + 8) + (2 * D * 2 + D + 2)
  assert fusion.count_params() == adapters + 2 * (D * D + D) + D * D


@pytest.mark.parametrize("adapter_type", ["houlsby", "pfeiffer", "parallel"])
def test_a_block_fusing_one_adapter_computes_the_plain_adapter_block(
    adapter_type):
  x = _inputs(shape=(2, 6, D))
  tf_keras.utils.set_random_seed(0)
  plain = AdapterTransformerBlock(adapter_size=8, adapter_init_scale=0.3,
                                  adapter_type=adapter_type, **BLOCK)
  fused = AdapterTransformerBlock(fused_adapter_sizes=[8],
                                  adapter_type=adapter_type, **BLOCK)
  plain(x)
  fused(x)
  assert [type(a) for a in fused.adapters] == [AdapterFusion] * len(
      plain.adapters)
  adapter_weights = {id(w) for a in fused.adapters for w in a.weights}
  fused_parent = [w for w in fused.weights if id(w) not in adapter_weights]
  plain_adapters = {id(w) for a in plain.adapters for w in a.weights}
  plain_parent = [w for w in plain.weights if id(w) not in plain_adapters]
  for target, source in zip(fused_parent, plain_parent):
    assert target.name.split("/", 1)[1] == source.name.split("/", 1)[1]
    target.assign(source)
  for fusion, adapter in zip(fused.adapters, plain.adapters):
    fusion.adapters[0].set_weights(adapter.get_weights())
    _far_from_identity(fusion.query)
  _assert_close(fused(x, training=False), plain(x, training=False))


def test_bad_sizes_raise():
  for sizes in ([], [4, 0]):
    with pytest.raises(ValueError, match="adapter_sizes"):
      AdapterFusion(adapter_sizes=sizes)


@pytest.mark.large  # a fresh process
def test_round_trip_and_fresh_process_saved_model():
  x = _inputs().numpy()
  layer, output = run_layer_test(
      AdapterFusion, dict(adapter_sizes=[4, 3], value_regularization=0.5),
      x, expected_output_shape=(2, 7, D))
  assert layer.get_config()["adapter_sizes"] == [4, 3]
  _far_from_identity(layer)
  classes = run_saved_model_test(layer, x)
  assert "AdapterFusion" in classes
