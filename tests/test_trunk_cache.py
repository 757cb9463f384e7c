"""leave_out (AdapterDrop) and the frozen trunk computed once, on the real
all-MiniLM-L6-v2 and real MRPC pairs.

Default tier: which variables a left-out block keeps frozen (counted by
hand), the trunk's output feeding the upper blocks, a cached `fit` against
an uncached one with the trunk's dropout off, the on-disk cache's key, and
the memory refusal. Large tier: run_classifier.py with --trunk_cache killed
in the cache's write and after a step, resumed from the cache, against an
unbroken run.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import harness
from keras_adapters import AdapterTextClassifier
from keras_adapters.config import AdapterConfig
from keras_adapters.data import features
from keras_adapters.data import trunk_cache
from keras_adapters.errors import UserInputError
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.networks.adapter_bert_encoder import add_adapters
from keras_adapters.saving import faults

LEAVE_OUT = (0, 1, 2)
WIDTH, M = 384, 64


def _pairs(n, split="train"):
  pairs = harness.mrpc_pairs(n, split)
  return [a for a, _ in pairs], [b for _, b in pairs]


def _classifier(**kwargs):
  return AdapterTextClassifier.from_preset(
      seed=1, num_classes=2, max_seq_length=64, leave_out=LEAVE_OUT, **kwargs)


def test_left_out_blocks_keep_no_adapters_and_frozen_layer_norms():
  model, encoder = build_classifier(
      harness.minilm()[0], 2, adapter_config=AdapterConfig(leave_out=LEAVE_OUT))
  assert [i for i, b in enumerate(encoder.transformer_layers)
          if b.adapters] == [3, 4, 5]
  names = [v.name for v in model.trainable_variables]
  assert not [n for n in names if any(
      f"layer_{i}/" in n for i in LEAVE_OUT) or "embeddings/layer_norm" in n]
  # by hand: 2 adapters in each of blocks 3-5, their 2 LayerNorms, the
  # pooler and the 2-class head
  adapters = 3 * 2 * (2 * WIDTH * M + WIDTH + M)
  expected = adapters + 3 * 2 * 2 * WIDTH + (WIDTH * WIDTH + WIDTH) + (
      (WIDTH + 1) * 2)
  assert expected == 450_818
  assert sum(v.shape.num_elements() for v in model.trainable_variables) == (
      expected)


def test_zero_init_with_leave_out_computes_the_pretrained_encoder():
  backbone = harness.minilm()[0]
  inputs = _ids(4)
  new = add_adapters(backbone, adapter_init_scale=0.0, leave_out=[0, 2, 4])
  assert len(new.adapters) == 6
  np.testing.assert_array_equal(new(inputs)["pooled_output"],
                                backbone(inputs)["pooled_output"])


def _ids(n):
  clf_pre = _classifier().preprocessor
  texts_a, texts_b = _pairs(n, "dev")
  return clf_pre(tf.constant(texts_a), tf.constant(texts_b))


def test_the_trunk_output_feeds_the_upper_blocks():
  clf = _classifier(adapter_init_scale=0.05)
  inputs = _ids(6)
  before = clf(inputs, training=False).numpy()
  clf.encoder.set_frozen_trunk(3)
  state = clf.encoder.trunk(inputs)
  assert state.shape[1:] == (inputs["input_mask"].shape[1], WIDTH)
  from_ids = clf(inputs, training=False).numpy()
  from_trunk = clf(dict(inputs, trunk_output=state), training=False).numpy()
  np.testing.assert_array_equal(from_trunk, from_ids)
  np.testing.assert_allclose(from_ids, before, atol=1e-5)
  assert before[:, 0].std() > 1e-3  # logits that differ per example


def test_frozen_trunk_needs_those_blocks_left_out():
  clf = _classifier()
  with pytest.raises(UserInputError, match=r"needs blocks 0\.\.3 left out"):
    clf.encoder.set_frozen_trunk(4)
  for config in (AdapterConfig(leave_out=[1, 2]), AdapterConfig()):
    model, _ = build_classifier(harness.minilm()[0], 2, adapter_config=config)
    with pytest.raises(UserInputError, match="lowest blocks left out"):
      trunk_cache.trunk_depth(model)


def _fit(batching, cache):
  tf_keras.backend.experimental.enable_tf_random_generator()
  try:
    clf = _classifier()
    clf.encoder.set_frozen_trunk(3)  # the trunk's dropout off in both runs
    clf.fit(_pairs(96), np.arange(96) % 2, batch_size=16, epochs=1,
            trunk_cache=cache, verbose=0, **batching)
    return [v.numpy() for v in clf.trainable_variables]
  finally:
    tf_keras.backend.experimental.disable_tf_random_generator()


@pytest.mark.parametrize("batching", [
    {}, pytest.param(dict(group_by_length=True), marks=pytest.mark.large),
    pytest.param(dict(bucket_by_length=True), marks=pytest.mark.large)])
def test_cached_training_equals_uncached_with_the_trunk_dropout_off(batching):
  cached, uncached = _fit(batching, True), _fit(batching, None)
  start = [v.numpy() for v in _classifier().trainable_variables]
  moved = max(np.abs(a - b).max() for a, b in zip(uncached, start))
  worst = max(np.abs(a - b).max() for a, b in zip(cached, uncached))
  assert moved > 1e-3 and worst < 1e-5, (moved, worst)


def _features(n, split="train"):
  clf = _classifier()
  return clf, features.tokenize(clf.preprocessor, *_pairs(n, split))


def test_the_cache_on_disk_is_reused_and_never_read_for_other_inputs(
    tmp_path, capsys):
  clf, ids = _features(40)
  path = str(tmp_path / "cache")
  first = trunk_cache.trunk_states(clf, ids, path=path, verbose=0)
  assert "computing blocks 0-2" in capsys.readouterr().out
  assert first.shape[0] == 40 and first.shape[-1] == WIDTH
  np.testing.assert_array_equal(first.row_lengths(),
                                ids["input_mask"].sum(1))
  again = trunk_cache.trunk_states(clf, ids, path=path, verbose=0)
  assert "read" in capsys.readouterr().out
  np.testing.assert_array_equal(again.flat_values, first.flat_values)
  _, other = _features(40, "dev")
  rebuilt = trunk_cache.trunk_states(clf, other, path=path, verbose=0)
  assert "other inputs: rebuilt" in capsys.readouterr().out
  assert not np.array_equal(rebuilt.row_lengths(), first.row_lengths())
  half = trunk_cache.trunk_states(clf, ids, "float16", path=path, verbose=0)
  assert "rebuilt" in capsys.readouterr().out and half.dtype == tf.float16
  np.testing.assert_allclose(half.flat_values.numpy().astype(np.float32),
                             first.flat_values, atol=2e-2, rtol=1e-2)


def test_a_cache_that_does_not_fit_is_refused_before_any_work(
    tmp_path, monkeypatch):
  clf, ids = _features(40)
  size = trunk_cache.cache_bytes(ids, WIDTH, "float32")
  assert size == ids["input_mask"].sum() * WIDTH * 4
  monkeypatch.setattr(trunk_cache, "available_memory_bytes",
                      lambda: size)  # 80 % of it is usable: too little
  with pytest.raises(UserInputError, match=r"needs 0\.\d\d GiB but .* free"):
    trunk_cache.trunk_states(clf, ids, path=str(tmp_path / "c"), verbose=0)
  assert not list(tmp_path.iterdir())
  monkeypatch.setattr(trunk_cache, "available_memory_bytes",
                      lambda: 2 * size)
  trunk_cache.trunk_states(clf, ids, verbose=0)


# --- large tier: the driver ----------------------------------------------------

FLAGS = ["--task_name=MRPC", "--do_train", "--do_eval",
         "--max_seq_length=48", "--train_batch_size=16",
         "--num_train_epochs=1", "--save_checkpoints_steps=4",
         "--dynamic_padding", "--deterministic", "--leave_out=0,1,2",
         "--trunk_cache"]


def _run(driver, args, fault=None):
  env = harness.driver_env(**({faults.ENV: fault} if fault else {}))
  return driver.run_driver("run_classifier.py", args, env=env)


def _pack(path):
  with np.load(path) as data:
    return {k: data[k] for k in data.files}


@pytest.mark.large
def test_driver_resumes_from_its_cache_after_a_kill(driver, mrpc_subset,
                                                    tmp_path):
  data = mrpc_subset(dict(train=128, dev=64))
  args = lambda out: FLAGS + [f"--data_dir={data}", f"--output_dir={out}"]
  unbroken = harness.checked(_run(driver, args(tmp_path / "a")))
  assert "Trunk cache: 128 examples" in unbroken.stdout
  out = tmp_path / "b"
  killed = _run(driver, args(out), "write:trunk_cache")
  assert killed.returncode == faults.EXIT_CODE, killed.stderr[-2000:]
  assert not (out / "trunk_cache").exists()
  killed = _run(driver, args(out), "step:6")
  assert killed.returncode == faults.EXIT_CODE, killed.stderr[-2000:]
  assert "computing blocks 0-2" in killed.stdout
  resumed = harness.checked(_run(driver, args(out)))
  assert "Trunk cache: read" in resumed.stdout
  assert "Resuming from" in resumed.stdout
  assert not list(out.glob("trunk_cache.partial-*"))
  a, b = _pack(tmp_path / "a/adapter_pack.npz"), _pack(out / "adapter_pack.npz")
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  assert (tmp_path / "a/eval_results.txt").read_text() == (
      out / "eval_results.txt").read_text()
  assert '"leave_out": [0, 1, 2]' in str(a["__config__"])


def test_trunk_cache_needs_texts_not_a_dataset_or_ids():
  clf = _classifier()
  texts = tf.data.Dataset.from_tensor_slices((["a b"] * 4, [0, 1] * 2))
  with pytest.raises(UserInputError, match="trunk_cache needs the texts"):
    clf.fit(texts.batch(2), trunk_cache=True, verbose=0)
