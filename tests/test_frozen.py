"""Frozen means frozen: adapter training leaves every backbone weight bit for
bit as pretrained, and training task B changes no byte of task A.

Uses the tiny real runs of tests/reliability.py (conftest's `reliability`).
"""

import numpy as np
import pytest

import harness
from harness import minilm

pytestmark = pytest.mark.large  # reads the driver runs of tests/reliability.py


def _unscoped(variable):
  return variable.name.split("/", 1)[1]


def test_adapter_training_leaves_the_backbone_bit_identical(reliability):
  """Restores the reference run's final checkpoint (the whole model) and
  compares every pretrained variable: the frozen ones bit for bit, and the
  ones adapter mode trains (LayerNorms, pooler) must have moved."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import build_classifier  # pylint: disable=g-import-not-at-top
  root, futures = reliability
  harness.checked(futures["reference"].result())
  pretrained = {_unscoped(v): v.numpy() for v in minilm()[0].weights}
  model, encoder = build_classifier(minilm()[0], 2, "adapter", 64)
  latest = tf.train.latest_checkpoint(str(root / "reference" / "checkpoints"))
  assert latest.endswith("ckpt-16")
  tf.train.Checkpoint(model=model).read(latest).assert_existing_objects_matched()
  adapters = {id(v) for a in encoder.adapters for v in a.weights}
  trained = set(map(id, model.trainable_variables))
  frozen, moved, checked = 0, [], set()
  for variable in encoder.weights:
    if id(variable) in adapters:
      continue
    name = _unscoped(variable)
    checked.add(name)
    after, before = variable.numpy(), pretrained[name]
    if id(variable) in trained:
      moved.append(after.tobytes() != before.tobytes())
    else:
      assert after.tobytes() == before.tobytes(), name
      frozen += after.size
  assert checked == set(pretrained)  # all of them
  # MiniLM-L6: 13 LayerNorms x 2 + pooler kernel and bias are trained.
  assert len(moved) == 28 and all(moved)
  assert frozen == 22_713_216 - 13 * 2 * 384 - (384 * 384 + 384)


def test_training_task_b_changes_nothing_of_task_a(reliability):
  """After task A (MRPC) trained, an SST-2 run on the same backbone, then
  A's pack predicting A's test set again: every file of A (pack,
  predictions, checkpoints) and of the shared backbone cache is unchanged,
  and the pack predicts byte for byte what A's run predicted."""
  root, futures = reliability
  before, cache_before, trained_b, predicted_a = futures["task_b"].result()
  harness.checked(trained_b)
  harness.checked(predicted_a)
  assert (root / "b" / "adapter_pack.npz").is_file()
  assert "adapter_pack.npz" in before and "test_results.tsv" in before
  assert harness.file_hashes(root / "reference") == before
  assert harness.file_hashes(harness.minilm_cache()) == cache_before
  for name in ("test_results.tsv", "MRPC.tsv"):
    assert (root / "a_again" / name).read_bytes() == (
        root / "reference" / name).read_bytes(), name
  with np.load(root / "b" / "adapter_pack.npz") as b, np.load(
      root / "reference" / "adapter_pack.npz") as a:
    assert any(not np.array_equal(a[k], b[k]) for k in a.files
               if k in b.files and k != "__config__")
