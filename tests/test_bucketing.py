"""Length-bucketed training batches (keras_adapters/data/bucketing.py) on
real MRPC pairs tokenized with the real BERT vocab: every example once per
pass, one bucket per batch cut to its boundary, seeded order, resume by
skipping, a fixed shape set, and one XLA compilation per bucket."""

import collections
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from harness import DATA, GLUE_DIR, REPO, subprocess_env
from keras_adapters.training import distribute
from keras_adapters.data import bucketing
from keras_adapters.data import features
from keras_adapters.data import glue
from keras_adapters.errors import UserInputError
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor

SEQ, BATCH = 128, 16
BOUNDARIES = [48, 64, 80, 128]


@pytest.fixture(scope="module")
def mrpc():
  """200 real MRPC training pairs: (texts, labels, cached examples)."""
  examples = glue.get_processor("mrpc").get_examples(
      str(GLUE_DIR / "MRPC"), "train")[:200]
  texts = [e.text_a for e in examples], [e.text_b for e in examples]
  labels = [int(e.label) for e in examples]
  preprocessor = AdapterTextPreprocessor(
      str(DATA / "bert_vocab" / "vocab.txt"), True, SEQ)
  return texts, labels, features.text_examples(*texts, labels, preprocessor)


def _stream(mrpc, seed=7, boundaries=BOUNDARIES):
  """(training batches, batches per pass), built anew as a run does."""
  _, labels, examples = mrpc
  steps = bucketing.steps_per_epoch(bucketing.example_lengths(examples),
                                    boundaries, BATCH)
  return bucketing.training_batches(examples, len(labels), boundaries, BATCH,
                                    seed), steps


def _batches(ds, n):
  return [({k: v.numpy() for k, v in x.items()}, y.numpy(), w.numpy())
          for x, y, w in ds.take(n)]


def _real_rows(batch):
  """(word ids without padding, label) of the batch's weight-1 rows."""
  x, y, w = batch
  return [(tuple(ids[:mask.sum()]), int(label)) for ids, mask, label, weight
          in zip(x["input_word_ids"], x["input_mask"], y, w) if weight == 1]


def _plain_rows(mrpc):
  """(word ids without padding, label) of every example, without bucketing."""
  rows = []
  for x, y in mrpc[2]:
    mask = x["input_mask"].numpy()
    rows.append((tuple(x["input_word_ids"].numpy()[:mask.sum()]), int(y)))
  return rows


def test_each_pass_feeds_every_example_once_in_length_buckets(mrpc):
  ds, steps = _stream(mrpc)
  batches = _batches(ds, 2 * steps)
  plain = collections.Counter(_plain_rows(mrpc))
  for epoch in range(2):
    seen = collections.Counter()
    for batch in batches[epoch * steps:(epoch + 1) * steps]:
      x, y, w = batch
      width = x["input_word_ids"].shape[1]
      assert x["input_word_ids"].shape == (BATCH, width) and width in BOUNDARIES
      lower = ([0] + BOUNDARIES)[BOUNDARIES.index(width)]
      lengths = x["input_mask"].sum(axis=1)
      assert ((lengths > lower) & (lengths <= width)).all(), (lower, width)
      assert y.shape == w.shape == (BATCH,) and set(w) <= {0.0, 1.0}
      assert w[0] == 1 and (np.diff(w) <= 0).all()  # copies at the end
      seen.update(_real_rows(batch))
    assert seen == plain, epoch  # the same examples as without bucketing
  # Each bucket's last batch is the only one topped up.
  partial = sum(w.sum() < BATCH for _, _, w in batches[:steps])
  assert partial <= len(BOUNDARIES)


def test_order_is_seeded_reshuffled_and_resumes_by_skipping(mrpc):
  ds, steps = _stream(mrpc)
  order = [_real_rows(b) for b in _batches(ds, 2 * steps + 3)]
  again = [_real_rows(b) for b in _batches(_stream(mrpc)[0], 2 * steps + 3)]
  assert order == again
  other = [_real_rows(b) for b in _batches(_stream(mrpc, seed=8)[0], steps)]
  assert other != order[:steps]
  assert order[:steps] != order[steps:2 * steps]  # reshuffled each pass
  for skip in (1, steps - 1, steps + 2):  # a resumed run builds it anew
    resumed = [_real_rows(b) for b in
               _batches(_stream(mrpc)[0].skip(skip), 2 * steps + 3 - skip)]
    assert resumed == order[skip:], skip


def test_the_shapes_are_a_fixed_set_one_per_bucket(mrpc):
  ds, steps = _stream(mrpc, boundaries=bucketing.boundaries_for(SEQ))
  assert ds.element_spec[0]["input_word_ids"].shape.as_list() == [BATCH, None]
  shapes = {b[0]["input_word_ids"].shape for b in _batches(ds, 3 * steps)}
  assert shapes <= {(BATCH, 32), (BATCH, 64), (BATCH, 96), (BATCH, 128)}
  assert len(shapes) >= 3  # MRPC pairs span several buckets


def test_boundaries_and_step_count():
  assert bucketing.boundaries_for(128) == [32, 64, 96, 128]
  assert bucketing.boundaries_for(64) == [16, 32, 48, 64]
  assert bucketing.boundaries_for(20) == [8, 16, 20]
  assert bucketing.boundaries_for(128, [40, 80]) == [40, 80, 128]
  for bad in ([80, 40], [0, 64], [64, 200], [64, 64]):
    with pytest.raises(UserInputError, match="increasing lengths"):
      bucketing.boundaries_for(128, bad)
  # Lengths 10 (x3), 33, 64 (x2), 65 with batches of 2 and buckets 32/64/96:
  # [10,10] [10] | [33,64] [64] | [65] -> 5 batches.
  assert bucketing.steps_per_epoch([10, 33, 10, 64, 64, 65, 10],
                                   [32, 64, 96], 2) == 5


_XLA_SCRIPT = """
import sys
import types
import tf_keras
from harness import DATA, tiny_encoder
from keras_adapters.models.text_classifier import AdapterTextClassifier
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
from keras_adapters.data import glue
examples = glue.get_processor("mrpc").get_examples(sys.argv[1], "train")[:160]
texts = ([e.text_a for e in examples], [e.text_b for e in examples])
model = AdapterTextClassifier(
    tiny_encoder(vocab_size=30522, hidden_size=16, num_layers=1, inner_dim=16,
                 max_sequence_length=128),
    AdapterTextPreprocessor(str(DATA / "bert_vocab" / "vocab.txt"), True, 128),
    task_name="MRPC", seed=3)
model.compile(optimizer="adam", jit_compile=True,
              loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
kwargs = dict(bucket_by_length=True) if sys.argv[2] == "bucketed" else {}
make = lambda: model.train_batches(  # each one's first pass: the same order
    texts, [e.label for e in examples], 4,
    dynamic_padding=sys.argv[2] == "dynamic", **kwargs)
batches, steps = make()
shapes = {tuple(x["input_word_ids"].shape) for x, *_ in batches.take(3 * steps)}
tf_keras.Model.fit(model, make()[0], epochs=3, steps_per_epoch=steps, verbose=0)
print("SHAPES", len(shapes), "STEPS", 3 * steps)
"""


def _xla_train_compilations(tmp_path, mode):
  """(XLA modules compiled for the train step (Keras' `run_step`), distinct batch shapes, steps)
  of a 3-epoch jit-compiled fit (a tiny random BERT: plumbing, not
  quality), counted from XLA's own dump of every module it compiles."""
  dump = tmp_path / mode
  env = subprocess_env()
  env["XLA_FLAGS"] = f"--xla_dump_to={dump}"
  env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
  result = subprocess.run(
      [sys.executable, "-c", _XLA_SCRIPT, str(GLUE_DIR / "MRPC"), mode],
      env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  words = result.stdout.split("SHAPES ", 1)[1].split()
  modules = {p.name.split(".")[0] for p in dump.iterdir()
             if "run_step" in p.name and p.name.endswith("before_optimizations.txt")}
  return len(modules), int(words[0]), int(words[2])


@pytest.mark.large
def test_xla_compiles_once_per_bucket_not_once_per_batch(tmp_path):
  compiled, shapes, steps = _xla_train_compilations(tmp_path, "bucketed")
  assert 2 <= shapes <= 4 and steps > 10 * shapes
  assert compiled == shapes
  dynamic, lengths, _ = _xla_train_compilations(tmp_path, "dynamic")
  assert dynamic == lengths > compiled  # --dynamic_padding: one per length


def test_replicas_each_get_their_slice_of_every_bucketed_batch(mrpc):
  """Host 1 of a 2-host pod with 8 replicas: replicas 4..7 take rows 8..15
  of each global batch (features, labels and weights), at its bucket's
  width: the even split the drivers rely on (keras_adapters/training/distribute.py)."""
  context = tf.distribute.InputContext(
      num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=8)
  per_replica = distribute.per_replica_input(
      lambda: _stream(mrpc)[0])(context)
  assert per_replica.element_spec[2].shape == [2]  # 16 / 8 replicas
  host_rows = list(per_replica.take(12).as_numpy_iterator())
  for step, (x, y, w) in enumerate(_batches(_stream(mrpc)[0], 3)):
    mine = host_rows[4 * step:4 * step + 4]
    for part, full in ((lambda r: r[0]["input_word_ids"], x["input_word_ids"]),
                       (lambda r: r[1], y), (lambda r: r[2], w)):
      np.testing.assert_array_equal(np.concatenate([part(r) for r in mine]),
                                    full[8:])


def _grouped(mrpc, seed=7):
  _, labels, examples = mrpc
  return bucketing.grouped_batches(examples, len(labels), BATCH, seed)


def _rows(batch):
  """(word ids without padding, label) of every row of an unweighted batch."""
  x, y = batch
  return [(tuple(ids[:mask.sum()]), int(label)) for ids, mask, label
          in zip(x["input_word_ids"], x["input_mask"], y)]


def test_grouped_batches_sort_groups_and_cut_each_batch_to_its_longest(mrpc):
  steps = len(mrpc[1]) // BATCH  # 200 pairs: 12 batches, 8 pairs dropped
  batches = [({k: v.numpy() for k, v in x.items()}, y.numpy())
             for x, y in _grouped(mrpc).take(2 * steps)]
  plain = collections.Counter(_plain_rows(mrpc))
  for epoch in range(2):
    seen, longest = collections.Counter(), []
    for x, y in batches[epoch * steps:(epoch + 1) * steps]:
      lengths = x["input_mask"].sum(axis=1)
      assert x["input_word_ids"].shape == (BATCH, lengths.max())  # no rounding
      assert (np.diff(lengths) <= 0).all()  # longest first
      longest.append(lengths.max())
      seen.update(_rows((x, y)))
    # 200 < one group of 50 batches: the pass is one sorted group.
    assert longest == sorted(longest, reverse=True)
    assert sum(seen.values()) == steps * BATCH and not seen - plain, epoch
  assert len({x["input_word_ids"].shape[1] for x, _ in batches}) > 4


def test_grouped_order_is_seeded_reshuffled_and_resumes_by_skipping(mrpc):
  steps = len(mrpc[1]) // BATCH
  take = lambda ds, n: [_rows((x, y)) for x, y in ds.take(n).as_numpy_iterator()]
  order = take(_grouped(mrpc), 2 * steps + 3)
  assert order == take(_grouped(mrpc), 2 * steps + 3)
  assert take(_grouped(mrpc, seed=8), steps) != order[:steps]
  assert order[:steps] != order[steps:2 * steps]  # reshuffled each pass
  for skip in (1, steps - 1, steps + 2):
    assert take(_grouped(mrpc).skip(skip), 2 * steps + 3 - skip) == (
        order[skip:]), skip


def test_fit_groups_by_length_but_not_with_buckets_too(mrpc):
  """The task API's `group_by_length` (a tiny random BERT: plumbing)."""
  from harness import tiny_encoder  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  texts, labels, _ = mrpc
  labels = [str(label) for label in labels]
  model = AdapterTextClassifier(
      tiny_encoder(vocab_size=30522, hidden_size=16, num_layers=1,
                   inner_dim=16, max_sequence_length=SEQ),
      AdapterTextPreprocessor(str(DATA / "bert_vocab" / "vocab.txt"), True,
                              SEQ), task_name="MRPC", seed=3)
  with pytest.raises(UserInputError, match="not both"):
    model.train_batches(texts, labels, BATCH, bucket_by_length=True,
                        group_by_length=True)
  ds, steps = model.train_batches(texts, labels, BATCH, group_by_length=True)
  assert steps == len(labels) // BATCH
  widths = [x["input_word_ids"].shape[1] for x, _ in ds.take(steps)]
  assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
  history = model.fit(texts, labels, batch_size=BATCH, epochs=2,
                      group_by_length=True, verbose=0)
  assert len(history.history["loss"]) == 2


class _CountingModel:
  """Stands in for the classifier: counts how often the stream is built."""

  def __init__(self):
    self.builds = 0

  def train_batches(self, texts, labels, batch_size, skip, *options,
                    **trunk_cache):
    del texts, labels, batch_size, options, trunk_cache
    self.builds += 1
    return tf.data.Dataset.range(100).skip(skip), 7


def test_the_driver_task_tokenizes_the_training_set_once():
  """run_classifier's task counts the bucketed steps and then trains on the
  same stream (skipping into it on resume), not on a second tokenization."""
  from keras_adapters.tasks.classification import ClassificationTask  # pylint: disable=g-import-not-at-top
  from keras_adapters.tasks.classification import DataSource  # pylint: disable=g-import-not-at-top
  task = ClassificationTask(DataSource("MRPC", str(GLUE_DIR / "MRPC")),
                            ["train"], bucket_by_length=True)
  model, settings = _CountingModel(), types.SimpleNamespace(
      train_batch_size=BATCH)
  assert task.num_train_batches(model, settings) == 7
  first = lambda skip, n: list(
      task.train_batches(model, settings, skip).take(n).as_numpy_iterator())
  assert first(3, 2) == [3, 4]
  assert first(0, 1) == [0]
  assert model.builds == 1
