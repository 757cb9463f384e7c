"""AdapterTransformerBlock against Model Garden's TransformerEncoderBlock."""

import numpy as np
import pytest
from scipy import special
import tensorflow as tf
import tf_keras
from official.nlp.modeling import layers as nlp_layers

from harness import run_layer_test
from harness import run_saved_model_test
from keras_adapters.layers.adapter_layer import AdapterLayer
from keras_adapters.layers.adapter_transformer_block import AdapterTransformerBlock

D, M = 16, 4
CONFIG = dict(num_attention_heads=2, inner_dim=32, inner_activation="gelu",
              output_dropout=0.1, attention_dropout=0.1)


def _inputs():
  x = tf.random.stateless_normal([2, 6, D], seed=[3, 4])
  valid = tf.constant([[1] * 6, [1] * 4 + [0] * 2], tf.float32)  # 2nd padded
  mask = tf.einsum("bi,bj->bij", tf.ones_like(valid), valid)
  return [x, mask]


def _relative(variable):
  return variable.name.split("/", 1)[1]


def _copy_parent_weights(source, target):
  """Assigns source's variables to target's same-named ones; returns the
  relative names of target variables that source does not have."""
  targets = {_relative(v): v for v in target.weights}
  for variable in source.weights:
    targets.pop(_relative(variable)).assign(variable)
  return set(targets)


@pytest.fixture(scope="module")
def reference():
  """A randomly initialised parent block and its output (training=False)."""
  tf_keras.utils.set_random_seed(0)
  block = nlp_layers.TransformerEncoderBlock(**CONFIG)
  return block, block(_inputs(), training=False).numpy()


def _adapter_block(reference_block, **kwargs):
  block = AdapterTransformerBlock(**kwargs, **CONFIG)
  block(_inputs())
  extra = _copy_parent_weights(reference_block, block)
  return block, extra


def test_adapter_size_zero_is_bitwise_the_parent_block(reference):
  ref_block, expected = reference
  block, extra = _adapter_block(ref_block, adapter_size=0)
  assert extra == set() and block.adapters == []
  assert block.count_params() == ref_block.count_params()
  np.testing.assert_array_equal(block(_inputs(), training=False), expected)


def test_init_scale_zero_is_bitwise_the_parent_block(reference):
  ref_block, expected = reference
  block, extra = _adapter_block(ref_block, adapter_size=M,
                                adapter_init_scale=0.0)
  assert len(extra) == 8 and all("adapter_" in name for name in extra)
  np.testing.assert_array_equal(block(_inputs(), training=False), expected)


def test_init_scale_1e_3_is_close_but_not_equal(reference):
  ref_block, expected = reference
  tf_keras.utils.set_random_seed(1)
  block, _ = _adapter_block(ref_block, adapter_size=M,
                            adapter_init_scale=1e-3)
  diff = np.abs(block(_inputs(), training=False).numpy() - expected)
  # Measured: max |diff| 1.2e-5, mean 1.6e-6 (d=16, m=4).
  assert 0 < diff.max() < 1e-3


def _sublayer_outputs(block, x, mask):
  attention = block._attention_layer(query=x, value=x, key=x,
                                     attention_mask=mask)
  ffn = lambda h: block._output_dense(block._intermediate_activation_layer(
      block._intermediate_dense(h)))
  return attention, ffn


def test_adapters_sit_before_the_residual_add_and_layer_norm(reference):
  """Paper Fig. 2: LN(x + adapter(sublayer(x))) for both sub-layers.

  Adapters with a large init make the placement visible; the alternatives
  (adapter after the LayerNorm, or on the residual sum) are computed too and
  must be far from the block's output, so the test can tell them apart.
  """
  ref_block, _ = reference
  tf_keras.utils.set_random_seed(2)
  block, _ = _adapter_block(ref_block, adapter_size=M, adapter_init_scale=0.5)
  x, mask = _inputs()
  out = block([x, mask], training=False).numpy()
  attention_ln, output_ln = block._attention_layer_norm, block._output_layer_norm
  adapter_attention, adapter_ffn = block.adapters
  attention, ffn = _sublayer_outputs(block, x, mask)

  h = attention_ln(x + adapter_attention(attention))
  paper = output_ln(h + adapter_ffn(ffn(h))).numpy()
  np.testing.assert_allclose(out, paper, rtol=0, atol=1e-6)

  h = adapter_attention(attention_ln(x + attention))
  after_layer_norm = adapter_ffn(output_ln(h + ffn(h))).numpy()
  h = attention_ln(adapter_attention(x + attention))
  on_residual_sum = output_ln(adapter_ffn(h + ffn(h))).numpy()
  for wrong in (after_layer_norm, on_residual_sum):
    assert np.abs(out - wrong).max() > 0.05

  # The FFN adapter acts after the attention sub-layer: changing it changes
  # the output but not the attention LayerNorm output h it is fed from.
  h_before = attention_ln(x + adapter_attention(attention)).numpy()
  adapter_ffn.up_project.kernel.assign(
      tf.fill(adapter_ffn.up_project.kernel.shape, 0.25))
  attention, ffn = _sublayer_outputs(block, x, mask)
  h_after = attention_ln(x + adapter_attention(attention)).numpy()
  np.testing.assert_array_equal(h_after, h_before)
  changed = block([x, mask], training=False).numpy()
  assert np.abs(changed - out).max() > 0.05
  np.testing.assert_allclose(
      changed, output_ln(h_after + adapter_ffn(ffn(h_after))).numpy(),
      rtol=0, atol=1e-6)


def test_adapters_come_after_the_dropout_in_training(reference):
  """With dropout keeping nothing, the sub-layer outputs are exactly 0, so
  the block computes LN(x + adapter(0)): non-zero adapter biases show only if
  each adapter runs after its dropout (before it, dropout would erase them).
  """
  config = dict(CONFIG, output_dropout=1 - 1e-7, attention_dropout=1 - 1e-7)
  block = AdapterTransformerBlock(adapter_size=M, **config)
  x, mask = _inputs()
  block([x, mask])
  for adapter in block.adapters:
    adapter.down_project.bias.assign(tf.fill([M], 0.5))
    adapter.up_project.bias.assign(tf.range(D, dtype=tf.float32) / D)
  out = block([x, mask], training=True).numpy()
  zeros = tf.zeros_like(x)
  adapter_attention, adapter_ffn = block.adapters
  h = block._attention_layer_norm(x + adapter_attention(zeros))
  expected = block._output_layer_norm(h + adapter_ffn(zeros)).numpy()
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
  adapter_first = block._output_layer_norm(block._attention_layer_norm(x))
  assert np.abs(out - adapter_first.numpy()).max() > 0.05


def test_both_adapters_present_with_names_and_sizes():
  block = AdapterTransformerBlock(adapter_size=M, **CONFIG)
  block(_inputs())
  assert [a.name for a in block.adapters] == ["adapter_attention",
                                              "adapter_ffn"]
  parent = nlp_layers.TransformerEncoderBlock(**CONFIG)
  parent(_inputs())
  per_adapter = 2 * M * D + D + M
  for adapter in block.adapters:
    assert isinstance(adapter, AdapterLayer) and adapter.adapter_size == M
    assert adapter.down_project.kernel.shape == (D, M)
    assert adapter.up_project.kernel.shape == (M, D)
    assert adapter.count_params() == per_adapter
  assert block.count_params() == parent.count_params() + 2 * per_adapter
  assert {_relative(v) for v in block.trainable_weights} >= {
      "attention_dropout_adapter/adapter_attention/down_project/kernel:0",
      "output_dropout_adapter/adapter_ffn/up_project/kernel:0"}


@pytest.mark.large  # a fresh process
@pytest.mark.parametrize("adapter_type", ["houlsby", "parallel"])
def test_round_trip_and_fresh_process_saved_model(adapter_type):
  inputs = [t.numpy() for t in _inputs()]
  tf_keras.utils.set_random_seed(3)
  block, output = run_layer_test(
      AdapterTransformerBlock,
      dict(adapter_size=M, adapter_init_scale=0.3, adapter_activation="relu",
           adapter_type=adapter_type, **CONFIG),
      inputs, expected_output_shape=(2, 6, D))
  # Not the identity adapters of init: the clones had to copy them.
  plain = nlp_layers.TransformerEncoderBlock(**CONFIG)
  plain(inputs)
  _copy_parent_weights(plain, block)  # block now = plain + its adapters
  assert np.abs(block(inputs, training=False).numpy()
                - plain(inputs, training=False).numpy()).max() > 0.01
  classes = run_saved_model_test(block, inputs)
  assert {"AdapterTransformerBlock", "AdapterLayer"} <= set(classes)


def _numpy_layer_norm(layer, s):
  s = np.asarray(s, np.float64)
  mean = s.mean(-1, keepdims=True)
  var = s.var(-1, keepdims=True)
  return ((s - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy() +
          layer.beta.numpy())


def _numpy_adapter_update(adapter, h):
  down = h @ adapter.down_project.kernel.numpy() + (
      adapter.down_project.bias.numpy())
  gelu = 0.5 * down * (1 + special.erf(down / np.sqrt(2)))
  return gelu @ adapter.up_project.kernel.numpy() + (
      adapter.up_project.bias.numpy())


def test_pfeiffer_init_scale_zero_is_bitwise_the_parent_block(reference):
  ref_block, expected = reference
  block, extra = _adapter_block(ref_block, adapter_size=M,
                                adapter_init_scale=0.0, adapter_type="pfeiffer")
  assert len(block.adapters) == 1 and len(extra) == 4
  assert all("adapter_ffn" in name for name in extra)
  np.testing.assert_array_equal(block(_inputs(), training=False), expected)


def test_pfeiffer_adapter_reads_and_precedes_the_output_layer_norm(reference):
  """Pfeiffer et al. (2021) as AdapterHub's SeqBnConfig computes it: for
  s = h + ffn(h), LN(s + update(LN(s))) with the one output LayerNorm,
  written out in NumPy here. Houlsby's FFN-adapter placement,
  LN(h + adapter(ffn(h))), must be far from it."""
  ref_block, _ = reference
  tf_keras.utils.set_random_seed(2)
  block, _ = _adapter_block(ref_block, adapter_size=M, adapter_init_scale=0.5,
                            adapter_type="pfeiffer")
  x, mask = _inputs()
  out = block([x, mask], training=False).numpy()
  (adapter,) = block.adapters
  attention, ffn = _sublayer_outputs(block, x, mask)
  h = block._attention_layer_norm(x + attention)
  s = (h + ffn(h)).numpy()
  norm = block._output_layer_norm.norm
  expected = _numpy_layer_norm(
      norm, s + _numpy_adapter_update(adapter, _numpy_layer_norm(norm, s)))
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
  houlsby_ffn_only = _numpy_layer_norm(
      norm, h.numpy() + adapter(ffn(h)).numpy())
  assert np.abs(out - houlsby_ffn_only).max() > 0.05


@pytest.mark.parametrize("adapter_type", ["pfeiffer", "parallel"])
def test_one_adapter_types_keep_the_parent_names_and_add_one_adapter(
    adapter_type):
  block = AdapterTransformerBlock(adapter_size=M, adapter_type=adapter_type,
                                  **CONFIG)
  block(_inputs())
  parent = nlp_layers.TransformerEncoderBlock(**CONFIG)
  parent(_inputs())
  names = {_relative(v) for v in block.weights}
  assert {_relative(v) for v in parent.weights} <= names
  assert [a.name for a in block.adapters] == ["adapter_ffn"]
  assert block.count_params() == parent.count_params() + 2 * M * D + D + M
  clone = AdapterTransformerBlock.from_config(block.get_config())
  assert clone.adapter_type == adapter_type


def test_unknown_type_and_pfeiffer_on_a_pre_norm_block_raise():
  with pytest.raises(ValueError, match="unknown adapter_type 'bogus'"):
    AdapterTransformerBlock(adapter_size=M, adapter_type="bogus", **CONFIG)
  pre_norm = AdapterTransformerBlock(adapter_size=M, adapter_type="pfeiffer",
                                     norm_first=True, **CONFIG)
  with pytest.raises(ValueError, match="needs a post-LayerNorm block"):
    pre_norm(_inputs())


@pytest.mark.parametrize("norm_first", [False, True])
def test_parallel_init_scale_zero_is_bitwise_the_parent_block(norm_first):
  tf_keras.utils.set_random_seed(0)
  parent = nlp_layers.TransformerEncoderBlock(norm_first=norm_first, **CONFIG)
  expected = parent(_inputs(), training=False).numpy()
  block, extra = _adapter_block(parent, adapter_size=M, norm_first=norm_first,
                                adapter_init_scale=0.0, adapter_type="parallel")
  assert len(block.adapters) == 1 and len(extra) == 4
  assert all("adapter_ffn" in name for name in extra)
  np.testing.assert_array_equal(block(_inputs(), training=False), expected)


def _numpy_ffn(block, h):
  dense = block._intermediate_dense.layer
  inner = h @ dense.kernel.numpy() + dense.bias.numpy()
  inner = 0.5 * inner * (1 + special.erf(inner / np.sqrt(2)))
  return inner @ block._output_dense.kernel.numpy() + (
      block._output_dense.bias.numpy())


@pytest.mark.parametrize("norm_first", [False, True])
def test_parallel_adapter_reads_the_ffn_input_beside_the_ffn(norm_first):
  """He et al. (2022), written out in NumPy from the block's sub-layers: the
  FFN input h (post-LN: after the attention LayerNorm; pre-LN: after the
  output LayerNorm) feeds both the FFN and the adapter, whose update, times
  4, joins the FFN output before the residual add. Pfeiffer's and Houlsby's
  FFN placements must be far from it."""
  tf_keras.utils.set_random_seed(2)
  block = AdapterTransformerBlock(adapter_size=M, adapter_init_scale=0.5,
                                  adapter_type="parallel",
                                  norm_first=norm_first, **CONFIG)
  x, mask = _inputs()
  out = block([x, mask], training=False).numpy()
  (adapter,) = block.adapters
  attention_ln, output_ln = block._attention_layer_norm, block._output_layer_norm
  if norm_first:
    residual = (x + block._attention_layer(
        query=attention_ln(x), value=attention_ln(x), key=attention_ln(x),
        attention_mask=mask)).numpy()
    h = _numpy_layer_norm(output_ln, residual)
    finish = lambda s: s
  else:
    attention = block._attention_layer(query=x, value=x, key=x,
                                       attention_mask=mask)
    residual = h = attention_ln(x + attention).numpy().astype(np.float64)
    finish = lambda s: _numpy_layer_norm(output_ln, s)
  ffn, update = _numpy_ffn(block, h), _numpy_adapter_update(adapter, h)
  np.testing.assert_allclose(out, finish(residual + ffn + 4 * update),
                             rtol=0, atol=1e-4)
  for wrong in (finish(residual + ffn + update),  # s = 1
                finish(residual + ffn + _numpy_adapter_update(adapter, ffn))):
    assert np.abs(out - wrong).max() > 0.05


def test_parallel_hands_the_ffn_input_over_within_one_call():
  block = AdapterTransformerBlock(adapter_size=M, adapter_type="parallel",
                                  **CONFIG)
  block(_inputs())
  assert block._intermediate_dense.kept.inputs is None


_MIRRORED_SCRIPT = """
import numpy as np, tensorflow as tf, tf_keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_adapters.layers.adapter_transformer_block import (
    AdapterTransformerBlock)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
  tf_keras.utils.set_random_seed(0)
  block = AdapterTransformerBlock(
      adapter_size=4, adapter_init_scale=0.5, adapter_type="parallel",
      num_attention_heads=2, inner_dim=32, inner_activation="gelu")
  block(tf.zeros([1, 3, 16]))
x = tf.random.stateless_normal([4, 3, 16], seed=[1, 2])
halves = strategy.experimental_distribute_values_from_function(
    lambda context: x[2 * context.replica_id_in_sync_group:][:2])
out = tf.function(lambda b: strategy.run(block, args=(b,)))(halves)
both = np.concatenate(strategy.experimental_local_results(out))
print(strategy.num_replicas_in_sync, np.abs(both - block(x).numpy()).max())
"""


@pytest.mark.large  # a fresh process (logical devices)
def test_parallel_adapters_under_mirrored_replicas_match_one_device():
  """MirroredStrategy traces each replica's block call in a thread of its
  own: each must get its own FFN input handed over."""
  import subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-imports
  from harness import subprocess_env  # pylint: disable=g-import-not-at-top
  proc = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT],
                        env=subprocess_env(), capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  replicas, max_diff = proc.stdout.split()
  assert replicas == "2" and float(max_diff) < 1e-5, proc.stdout
