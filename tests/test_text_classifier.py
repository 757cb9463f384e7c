"""AdapterTextClassifier: the Keras task API on the real MiniLM and real GLUE.

The README's example runs as written; raw strings, pairs, string labels and
tf.data in `fit`; an explicit `compile` wins over the default; save/load of
the adapters; a generic sentence-pair task trained by the driver and
exported by the CLI really uses text_b in a fresh process.
"""

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from harness import GLUE_DIR, REPO, subprocess_env
from keras_adapters import AdapterTextClassifier
from keras_adapters import UserInputError

SEQ = 64


def _tsv(task, split, columns, n=None):
  with open(GLUE_DIR / task / f"{split}.tsv", encoding="utf-8") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
  return [[r[c] for r in rows[:n]] for c in columns]


@pytest.fixture(scope="module")
def mrpc():
  """Real MRPC pairs: 64 train (two batches of 32), 48 dev."""
  label, a, b = _tsv("MRPC", "train", (0, 3, 4), 64)
  dev_label, dev_a, dev_b = _tsv("MRPC", "dev", (0, 3, 4), 48)
  return (a, b), label, (dev_a, dev_b), dev_label


@pytest.fixture(scope="module")
def trained(mrpc):
  """MRPC's classifier (GLUE facts: labels "0"/"1", pairs, F1), trained
  two steps on string labels."""
  x, y, _, _ = mrpc
  clf = AdapterTextClassifier.from_preset(
      task_name="MRPC", max_seq_length=SEQ, seed=3)
  history = clf.fit(x, y, batch_size=32, epochs=1, verbose=0,
                    validation_data=((x[0][:8], x[1][:8]), y[:8]))
  return clf, history


@pytest.fixture(scope="module")
def untrained():
  """A classifier that is never fit: the bad-input checks share it."""
  return AdapterTextClassifier.from_preset(labels=["0", "1"],
                                           max_seq_length=SEQ)


@pytest.mark.large
def test_readme_example_runs_as_written(tmp_path):
  """The README's task-API block, verbatim, from a directory beside
  ../shared like the checkout; SST-2 dev accuracy far above the majority
  class (50.9 %)."""
  readme = (REPO / "README.md").read_text(encoding="utf-8")
  block = re.search(r"<!-- task-api-example -->\n```python\n(.*?)```",
                    readme, re.S).group(1)
  work = tmp_path / "work"
  work.mkdir()
  (tmp_path / "shared").symlink_to(REPO.parent / "shared")
  script = block + "\nimport json\nprint('RESULT', json.dumps(metrics))\n"
  result = subprocess.run([sys.executable, "-c", script], cwd=work,
                          env=subprocess_env(), capture_output=True,
                          text=True, timeout=3600)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads(result.stdout.split("RESULT ", 1)[1])
  assert metrics["accuracy"] > 0.70, metrics
  assert (work / "sst2_adapters.npz").is_file()
  assert (work / "sst2_export" / "1" / "saved_model.pb").is_file()


def test_fit_trains_only_adapters_layernorms_and_head(trained):
  clf, history = trained
  report = clf.parameter_report()
  assert report["trainable_params"] == 753_794  # README's adapter row
  assert set(history.history) == {"loss", "accuracy", "val_loss",
                                  "val_accuracy"}
  assert clf.optimizer.iterations.numpy() == 2  # 64 pairs, batch 32


def test_predict_probabilities_labels_and_evaluate(trained, mrpc):
  clf, _ = trained
  _, _, dev_x, dev_y = mrpc
  probabilities = clf.predict_proba(dev_x)
  assert probabilities.shape == (48, 2)
  np.testing.assert_allclose(probabilities.sum(-1), 1, rtol=1e-5)
  labels = clf.predict_labels(dev_x)
  assert set(labels) <= {"0", "1"} and len(labels) == 48
  assert labels == [["0", "1"][i] for i in probabilities.argmax(-1)]
  metrics = clf.evaluate_metrics(dev_x, dev_y)
  assert set(metrics) == {"accuracy", "f1"}  # MRPC's metrics
  gold = np.array(dev_y) == np.array(labels)
  assert metrics["accuracy"] == pytest.approx(gold.mean())


def test_predict_and_evaluate_keep_keras_meanings_for_texts(trained, mrpc):
  """Raw texts get what their token ids get: predict, the model's logits;
  evaluate, Keras' loss and compiled metrics."""
  clf, _ = trained
  _, _, (dev_a, dev_b), dev_y = mrpc
  ids = clf.preprocessor(tf.constant(dev_a[:16]), tf.constant(dev_b[:16]))
  logits = clf.predict((dev_a[:16], dev_b[:16]), dynamic_padding=False)
  np.testing.assert_allclose(logits, clf.predict(ids, verbose=0), atol=1e-5)
  np.testing.assert_allclose(tf.nn.softmax(logits).numpy(),
                             clf.predict_proba((dev_a[:16], dev_b[:16])),
                             atol=1e-5)
  gold = np.array([int(l) for l in dev_y[:16]])
  result = clf.evaluate((dev_a[:16], dev_b[:16]), dev_y[:16], verbose=0,
                        return_dict=True)
  assert set(result) == {"loss", "accuracy"}
  assert result["accuracy"] == pytest.approx((logits.argmax(-1) == gold).mean())
  loss = tf_keras.losses.sparse_categorical_crossentropy(
      gold, logits, from_logits=True).numpy().mean()
  assert result["loss"] == pytest.approx(loss, rel=1e-4)
  assert clf.evaluate(ids, gold, verbose=0) == pytest.approx(
      [result["loss"], result["accuracy"]], rel=1e-4)


def test_predict_cuts_batches_to_their_longest_text(trained, mrpc):
  """predict pads each batch only to its longest pair (rounded up to 8) by
  default, with the outputs of padding to max_seq_length."""
  clf, _ = trained
  _, _, (dev_a, dev_b), _ = mrpc
  short = ([t[:60] for t in dev_a[:16]], [t[:60] for t in dev_b[:16]])

  def widths(**kwargs):
    batches, _ = clf._eval_batches(short, batch_size=8, **kwargs)  # pylint: disable=protected-access
    return [batch["input_word_ids"].shape[1] for batch in batches]

  assert len(widths()) == 2
  assert all(w % 8 == 0 and w < SEQ for w in widths()), widths()
  assert widths(dynamic_padding=False) == [SEQ, SEQ]
  np.testing.assert_allclose(clf.predict(short, batch_size=8),
                             clf.predict(short, batch_size=8,
                                         dynamic_padding=False), atol=1e-5)


def test_text_b_matters(trained, mrpc):
  clf, _ = trained
  (a, b), _, _, _ = mrpc
  swapped = clf.predict((a[:8], b[8:16]))
  assert np.abs(swapped - clf.predict((a[:8], b[:8]))).max() > 1e-4


def test_save_and_load_adapters_round_trip(trained, mrpc, tmp_path):
  clf, _ = trained
  _, _, dev_x, _ = mrpc
  path = clf.save_adapters(str(tmp_path / "mrpc.npz"))
  with np.load(path) as data:
    config = json.loads(str(data["__config__"]))
  assert config["is_pair"] is True and config["labels"] == ["0", "1"]
  assert config["max_seq_length"] == SEQ and config["do_lower_case"] is True
  assert config["adapter_type"] == "houlsby"
  reloaded = AdapterTextClassifier.load_adapters(path)
  np.testing.assert_array_equal(reloaded.predict(dev_x), clf.predict(dev_x))
  with pytest.raises(UserInputError, match="takes \\(texts_a, texts_b\\)"):
    reloaded.predict(dev_x[0])


@pytest.mark.parametrize("form", ["clf_dir", "clf.h5"])
def test_keras_save_refuses_other_formats_at_save_time(trained, tmp_path,
                                                       form):
  clf, _ = trained
  with pytest.raises(UserInputError) as e:
    clf.save(str(tmp_path / form))
  assert "clf.save('model.keras')" in str(e.value)
  assert "save_adapters(path)" in str(e.value) and "export(" in str(e.value)
  assert "\n" not in str(e.value)
  assert not list(tmp_path.iterdir())  # nothing half-written


_LOAD_AND_FIT = """
import json, sys
import numpy as np, tf_keras
from keras_adapters import AdapterTextClassifier  # registers the class
path, spec = sys.argv[1], json.loads(sys.stdin.read())
model = tf_keras.models.load_model(path)
probabilities = model.predict_proba(tuple(spec["x"]))
before = [v.numpy() for v in model.encoder.adapters[0].weights]
history = model.fit(tuple(spec["x"]), spec["y"], batch_size=8, epochs=1,
                    verbose=0)
moved = max(float(np.abs(b - v.numpy()).max())
            for b, v in zip(before, model.encoder.adapters[0].weights))
print(json.dumps(dict(probabilities=probabilities.tolist(), moved=moved,
                      loss=history.history["loss"][-1],
                      config=model.task_config)))
"""


@pytest.mark.large
def test_keras_save_and_load_model_round_trip_in_a_fresh_process(
    trained, mrpc, tmp_path):
  """.keras holds preprocessor, vocabulary, adapters, head and mode: a fresh
  process loads it with tf_keras.models.load_model, predicts the same
  probabilities on raw strings, and fit goes on training the adapters."""
  clf, _ = trained
  _, _, (dev_a, dev_b), dev_y = mrpc
  path = tmp_path / "mrpc.keras"
  clf.save(str(path))
  spec = dict(x=[dev_a[:16], dev_b[:16]], y=dev_y[:16])
  result = subprocess.run(
      [sys.executable, "-c", _LOAD_AND_FIT, str(path)], input=json.dumps(spec),
      cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
      timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  loaded = json.loads(result.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(loaded["probabilities"],
                             clf.predict_proba((dev_a[:16], dev_b[:16])),
                             atol=1e-6)
  assert loaded["moved"] > 0 and np.isfinite(loaded["loss"])
  assert {k: loaded["config"][k] for k in ("labels", "fine_tune_mode",
                                           "adapter_size", "is_pair")} == {
      "labels": ["0", "1"], "fine_tune_mode": "adapter", "adapter_size": 64,
      "is_pair": True}


@pytest.mark.parametrize("adapter_type", ["pfeiffer", "parallel"])
def test_one_adapter_per_block_types_fit_save_and_reload(mrpc, tmp_path,
                                                        adapter_type):
  x, y, dev_x, _ = mrpc
  clf = AdapterTextClassifier.from_preset(
      task_name="MRPC", max_seq_length=SEQ, seed=3, adapter_type=adapter_type,
      adapter_init_scale=0.05)
  assert len(clf.encoder.adapters) == 6  # one per block
  before = [v.numpy() for v in clf.encoder.adapters[0].weights]
  clf.fit(x, y, batch_size=32, epochs=1, verbose=0)
  assert all(np.abs(b - v.numpy()).max() > 0 for b, v in zip(
      before, clf.encoder.adapters[0].weights))
  path = clf.save_adapters(str(tmp_path / f"{adapter_type}.npz"))
  reloaded = AdapterTextClassifier.load_adapters(path)
  assert reloaded.encoder.adapter_config.adapter_type == adapter_type
  np.testing.assert_array_equal(reloaded.predict(dev_x), clf.predict(dev_x))


@pytest.mark.large
def test_explicit_compile_wins_and_callbacks_run(mrpc, tmp_path):
  x, y, _, _ = mrpc
  clf = AdapterTextClassifier.from_preset(num_classes=2, max_seq_length=SEQ)
  clf.compile(optimizer=tf_keras.optimizers.SGD(0.0),
              loss=tf_keras.losses.SparseCategoricalCrossentropy(
                  from_logits=True))
  before = [v.numpy() for v in clf.trainable_variables]
  seen = []
  clf.fit(x, [int(v) for v in y], epochs=1, verbose=0, callbacks=[
      tf_keras.callbacks.LambdaCallback(
          on_epoch_end=lambda epoch, logs: seen.append(logs["loss"])),
      tf_keras.callbacks.EarlyStopping(monitor="loss", patience=1),
      tf_keras.callbacks.TensorBoard(str(tmp_path / "logs")),
      tf_keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt" / "weights"),
                                         save_weights_only=True)])
  assert (tmp_path / "ckpt" / "weights.index").is_file()
  assert list((tmp_path / "logs" / "train").iterdir())
  assert isinstance(clf.optimizer, tf_keras.optimizers.SGD)
  for b, v in zip(before, clf.trainable_variables):
    np.testing.assert_array_equal(b, v.numpy())  # rate 0: nothing moved
  assert len(seen) == 1 and np.isfinite(seen[0])


@pytest.mark.large
def test_fit_on_a_dataset_of_strings(mrpc):
  x, y, _, _ = mrpc
  clf = AdapterTextClassifier.from_preset(labels=["0", "1"],
                                          max_seq_length=SEQ)
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
  history = clf.fit(ds, epochs=1, verbose=0)
  assert clf.optimizer.iterations.numpy() == 4
  assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("call, message", [
    (lambda c, x, y: c.fit(x, y[:-1]), "one label per text"),
    (lambda c, x, y: c.fit(x, ["0"] * 63 + ["maybe"]), "'maybe' is not in"),
    (lambda c, x, y: c.fit((x[0][:8], x[1][:8]), y[:8]), "fewer than one "
     "batch"),
    (lambda c, x, y: c.fit((x[0], x[1][:3]), y), "one text_b per text_a"),
    (lambda c, x, y: c.fit("one string", ["0"]), "must be a list"),
])
def test_bad_input_is_one_clear_error(mrpc, untrained, call, message):
  x, y, _, _ = mrpc
  with pytest.raises(UserInputError, match=message):
    call(untrained, x, y)
  assert untrained.optimizer is None  # refused before any training


def test_model_sources_and_task_facts(tmp_path):
  with pytest.raises(UserInputError, match="pass num_classes"):
    AdapterTextClassifier.from_preset(max_seq_length=SEQ)
  with pytest.raises(UserInputError, match="unknown adapter_type"):
    AdapterTextClassifier.from_preset(num_classes=2, adapter_type="lora")
  stsb = AdapterTextClassifier.from_preset(task_name="STS-B",
                                           max_seq_length=SEQ)
  assert stsb.is_regression and stsb.task_config["is_pair"] is True
  assert stsb.num_classes == 1
  with pytest.raises(UserInputError, match="found 0 checkpoints"):
    AdapterTextClassifier.from_preset(str(tmp_path), num_classes=2)
