"""AdapterLayer: size, identity at init, init statistics, serialization."""

import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from harness import run_saved_model_test
from keras_adapters.layers.adapter_layer import AdapterLayer

# tf_keras' TruncatedNormal(stddev=s) cuts a N(0, s) at +-2s; what is left has
# standard deviation s * sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.8796 s.
TRUNCATED_STD_FACTOR = 0.8796


def _inputs(d, seed=0, shape=(2, 7)):
  return tf.random.stateless_normal(shape + (d,), seed=[seed, 1])


@pytest.mark.parametrize("d, m", [(16, 8), (384, 64), (768, 1), (32, 256)])
def test_parameter_count_is_2md_plus_d_plus_m(d, m):
  adapter = AdapterLayer(adapter_size=m)
  adapter(_inputs(d))
  assert adapter.count_params() == 2 * m * d + d + m
  shapes = {w.name.split("/", 1)[1]: tuple(w.shape) for w in adapter.weights}
  assert shapes == {"down_project/kernel:0": (d, m),
                    "down_project/bias:0": (m,),
                    "up_project/kernel:0": (m, d),
                    "up_project/bias:0": (d,)}


def test_exact_identity_at_init_scale_zero():
  x = _inputs(384)
  adapter = AdapterLayer(adapter_size=64, init_scale=0.0)
  np.testing.assert_array_equal(adapter(x).numpy(), x.numpy())
  assert all(not np.any(w) for w in adapter.get_weights())


def test_near_identity_at_init_scale_1e_3():
  x = _inputs(384)
  tf.random.set_seed(0)
  adapter = AdapterLayer(adapter_size=64, init_scale=1e-3)
  diff = np.abs(adapter(x).numpy() - x.numpy())
  # Measured: max |diff| 2.5e-4, mean 4.8e-5 for unit-normal inputs.
  assert 0 < diff.max() < 1e-3
  assert diff.mean() < 1e-4


@pytest.mark.parametrize("init_scale", [1e-3, 1e-2])
def test_init_statistics(init_scale):
  tf.random.set_seed(1)
  adapter = AdapterLayer(adapter_size=64, init_scale=init_scale)
  adapter(_inputs(384))
  for dense in (adapter.down_project, adapter.up_project):
    np.testing.assert_array_equal(dense.bias.numpy(), 0.0)
    kernel = dense.kernel.numpy()
    assert kernel.size == 384 * 64
    assert np.abs(kernel).max() <= 2 * init_scale  # truncated at 2 std
    assert np.abs(kernel).max() > 1.9 * init_scale  # ... not a smaller std
    assert abs(kernel.mean()) < 0.03 * init_scale
    assert kernel.std() == pytest.approx(TRUNCATED_STD_FACTOR * init_scale,
                                         rel=0.03)
  # Independent draws, not one tensor reused.
  assert not np.array_equal(adapter.down_project.kernel.numpy(),
                            adapter.up_project.kernel.numpy().T)


@pytest.mark.large  # a fresh process
def test_layer_round_trip_and_fresh_process_saved_model():
  x = _inputs(16).numpy()
  layer, output = run_layer_test(
      AdapterLayer, dict(adapter_size=4, init_scale=0.5, activation="relu"),
      x, expected_output_shape=(2, 7, 16))
  # A large init_scale makes the adapter far from the identity, so the round
  # trips above compare a non-trivial function.
  assert np.abs(output.numpy() - x).max() > 0.1
  np.testing.assert_allclose(  # the activation really is relu
      output.numpy(),
      x + layer.up_project(tf.nn.relu(layer.down_project(x))).numpy(),
      rtol=0, atol=1e-6)
  classes = run_saved_model_test(layer, x)
  assert "AdapterLayer" in classes  # revived from its config, not a stub


@pytest.mark.parametrize("kwargs, message", [
    (dict(adapter_size=0), "adapter_size"),
    (dict(adapter_size=-3), "adapter_size"),
    (dict(adapter_size=8, init_scale=-1e-3), "init_scale"),
])
def test_bad_arguments_raise(kwargs, message):
  with pytest.raises(ValueError, match=message):
    AdapterLayer(**kwargs)
