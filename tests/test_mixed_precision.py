"""--mixed_precision: dtypes under mixed_bfloat16 (float32 variables, bf16
compute, float32 adapter skip adds, logits and loss), a training step that
moves the adapters, loss scaling for mixed_float16, the policy reset, and a
pack trained under bf16 loading into a float32 model."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import harness
from keras_adapters.saving import adapter_pack
from keras_adapters.training import precision
from keras_adapters.models.text_classifier import AdapterTextClassifier


def _classifier(policy, dropout_rate=0.1, adapter_type="houlsby"):
  with precision.global_policy(policy):
    encoder = harness.tiny_encoder(dropout_rate=dropout_rate)
    return AdapterTextClassifier(encoder, None, num_classes=2, adapter_size=8,
                                 dropout_rate=dropout_rate, seed=1,
                                 adapter_type=adapter_type)


def _batch(n=8, length=16):
  ids = np.random.RandomState(0).randint(1, 100, [n, length]).astype(np.int32)
  x = dict(input_word_ids=ids, input_mask=np.ones_like(ids),
           input_type_ids=np.zeros_like(ids))
  return x, np.array([0, 1] * (n // 2))


def test_policy_is_set_inside_and_restored_after_an_error():
  with pytest.raises(RuntimeError):
    with precision.global_policy("mixed_bfloat16"):
      assert tf_keras.mixed_precision.global_policy().name == "mixed_bfloat16"
      raise RuntimeError("boom")
  assert tf_keras.mixed_precision.global_policy().name == "float32"
  with pytest.raises(ValueError, match="float64"):
    with precision.global_policy("float64"):
      pass


def test_bf16_keeps_variables_logits_and_loss_in_float32():
  model = _classifier("mixed_bfloat16")
  block = model.encoder.transformer_layers[0]
  assert {v.dtype for v in model.weights} == {tf.float32}
  assert block.compute_dtype == "bfloat16"
  assert block.adapters[0].compute_dtype == "bfloat16"
  assert block._output_layer_norm.compute_dtype == "float32"  # pylint: disable=protected-access
  x, y = _batch()
  logits = model(x, training=False)
  assert logits.dtype == tf.float32
  model.compile_adamw(10)
  assert model.compiled_loss(tf.constant(y), logits).dtype == tf.float32
  # The adapter's skip add: 16-bit in, float32 out (the update survives).
  adapter = block.adapters[0]
  out = adapter(tf.ones([1, 3, 32], tf.bfloat16))
  assert out.dtype == tf.float32
  assert block(tf.ones([1, 3, 32])).dtype == tf.float32


@pytest.mark.parametrize("adapter_type", ["houlsby", "pfeiffer", "parallel"])
def test_bf16_training_moves_the_adapters_with_a_finite_loss(adapter_type):
  model = _classifier("mixed_bfloat16", adapter_type=adapter_type)
  block = model.encoder.transformer_layers[0]
  assert block(tf.ones([1, 3, 32])).dtype == tf.float32
  model.compile_adamw(4, warmup_proportion=0.0)
  adapter = model.encoder.adapters[0]
  before = [v.numpy() for v in adapter.weights]
  x, y = _batch()
  history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
  assert all(np.isfinite(history.history["loss"]))
  moved = [np.abs(b - v.numpy()).max() for b, v in zip(before,
                                                        adapter.weights)]
  assert min(moved) > 0, moved


@pytest.mark.parametrize("policy,scaled", [("mixed_float16", True),
                                           ("mixed_bfloat16", False),
                                           ("float32", False)])
def test_only_float16_gets_a_loss_scale_optimizer(policy, scaled):
  model = _classifier(policy)
  model.compile_adamw(10)
  is_scaled = isinstance(model.optimizer,
                         tf_keras.mixed_precision.LossScaleOptimizer)
  assert is_scaled == scaled


def test_bf16_pack_is_float32_and_loads_into_a_float32_model(tmp_path):
  bf16 = _classifier("mixed_bfloat16", dropout_rate=0.0)
  rng = np.random.RandomState(3)
  for v in bf16.trainable_variables:  # trained-looking, not near-identity
    v.assign(rng.normal(0, 0.05, v.shape).astype(np.float32))
  path = str(tmp_path / "pack.npz")
  adapter_pack.save_adapter_pack(path, bf16, bf16.encoder, bf16.task_config)
  _, arrays = adapter_pack.read_pack(path)
  assert {a.dtype for a in arrays.values()} == {np.dtype(np.float32)}

  f32 = _classifier("float32", dropout_rate=0.0)
  adapter_pack.load_adapter_pack(path, f32, f32.encoder)
  x, _ = _batch()
  expected = f32(x, training=False).numpy()
  actual = bf16(x, training=False).numpy()
  assert not np.allclose(expected, 0, atol=1e-3)
  # bfloat16 keeps 8 significant bits: ~1 % relative error per op.
  np.testing.assert_allclose(actual, expected, rtol=0.05, atol=0.05)
  assert (actual.argmax(-1) == expected.argmax(-1)).mean() >= 0.75


@pytest.mark.large
def test_run_classifier_trains_and_evaluates_in_mixed_bfloat16(tmp_path):
  data = harness.glue_subset(tmp_path / "data", dict(train=8, dev=8))
  out = tmp_path / "out"
  proc = harness.checked(harness.run_driver(
      "run_classifier.py", ["--task_name=MRPC", "--do_train", "--do_eval",
                            f"--data_dir={data}", "--max_seq_length=32",
                            "--train_batch_size=4", "--num_train_epochs=1",
                            "--mixed_precision=mixed_bfloat16",
                            f"--output_dir={out}"], timeout=900))
  assert "mixed_precision=mixed_bfloat16" in proc.stdout
  results = (out / "eval_results.txt").read_text()
  assert "global_step = 2" in results
  assert "eval_accuracy = " in results and "eval_f1 = " in results  # MRPC's
  _, arrays = adapter_pack.read_pack(str(out / "adapter_pack.npz"))
  assert {a.dtype for a in arrays.values()} == {np.dtype(np.float32)}
