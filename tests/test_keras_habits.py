"""Everyday Keras habits on AdapterTextClassifier (issue #41, item 5), on the
real MiniLM and real SST-2/STS-B rows.

`CASES` is the library part of docs/RELIABILITY.md's bad-input catalogue:
`fit(validation_split=...)` and `predict([])` work as in Keras; a text that
is not a string and a max_seq_length beyond the model's positions are one
UserInputError line. `test_docs_library_table_matches` checks the docs table
against CASES. Then the commands' TF log level (no `cuInit` line on CPU, the
user's TF_CPP_MIN_LOG_LEVEL wins) and predict/evaluate reading no further
than their batches (no `Local rendezvous is aborting` line).
"""

import collections
import csv
import math
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
from keras_adapters.cli import tf_logs
from keras_adapters.models import task_inputs

SEQ = 16
DOC = REPO / "docs" / "RELIABILITY.md"


def _tsv(task, columns, n):
  with open(GLUE_DIR / task / "train.tsv", encoding="utf-8") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
  return [[r[c] for r in rows[:n]] for c in columns]


@pytest.fixture(scope="module")
def sst2():
  """40 real SST-2 sentences and their labels ("0"/"1")."""
  return _tsv("SST-2", (0, 1), 40)


@pytest.fixture(scope="module")
def sst2_classifier():
  return AdapterTextClassifier.from_preset(task_name="SST-2",
                                           max_seq_length=SEQ, seed=1)


@pytest.fixture(scope="module")
def stsb_classifier():
  """A pair regression task: STS-B."""
  return AdapterTextClassifier.from_preset(task_name="STS-B",
                                           max_seq_length=SEQ, seed=1)


# --- the library's bad-input catalogue ---------------------------------------

def _validation_split(get):
  """The last 20 % (8 of 40, before shuffling) validate: Keras' val_loss
  and val_accuracy are those of the fitted model on exactly those texts."""
  (texts, labels), clf = get("sst2"), get("sst2_classifier")
  history = clf.fit(texts, labels, batch_size=8, epochs=1, verbose=0,
                    validation_split=0.2)
  assert set(history.history) == {"loss", "accuracy", "val_loss",
                                  "val_accuracy"}
  assert clf.optimizer.iterations.numpy() == 4  # 32 training texts
  logits = clf.predict(texts[32:])
  gold = np.array([int(l) for l in labels[32:]])
  assert history.history["val_accuracy"][0] == pytest.approx(
      (logits.argmax(-1) == gold).mean())
  loss = tf_keras.losses.sparse_categorical_crossentropy(
      gold, logits, from_logits=True).numpy().mean()
  assert history.history["val_loss"][0] == pytest.approx(loss, rel=1e-4)


def _predict_empty(get):
  clf, stsb = get("sst2_classifier"), get("stsb_classifier")
  for outputs in (clf.predict([]), clf.predict_proba([])):
    assert outputs.shape == (0, 2) and outputs.dtype == np.float32
  assert list(clf.predict_labels([])) == []
  assert stsb.predict_proba(([], [])).shape == (0,)  # regression: scores [n]
  assert stsb.predict(([], [])).shape == (0, 1)
  assert clf.predict(["a gripping film"]).shape == (1, 2)  # as for n texts


Case = collections.namedtuple("Case", "run message")

_FIX = "not a string; pass str texts only (convert, fill in or drop that example)"
CASES = {
    "validation_split": Case(_validation_split, None),
    "predict_empty": Case(_predict_empty, None),
    "text_not_a_string": Case(
        lambda get: get("sst2_classifier").predict(["a gripping film", None]),
        f"x[1] is None (NoneType), {_FIX}"),
    "pair_text_not_a_string": Case(
        lambda get: get("stsb_classifier").predict(
            (["a man plays", "a dog runs"], ["a man sings", 7])),
        f"texts_b[1] is 7 (int), {_FIX}"),
    "max_seq_length_above_positions": Case(
        lambda get: AdapterTextClassifier.from_preset(num_classes=2,
                                                      max_seq_length=1000),
        "max_seq_length=1000 exceeds this model's 512 positions (its "
        "encoder's max_sequence_length); pass max_seq_length=512 or less, "
        "e.g. 128"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_library_case(request, name):
  case = CASES[name]
  if case.message is None:
    case.run(request.getfixturevalue)
    return
  with pytest.raises(UserInputError) as e:
    case.run(request.getfixturevalue)
  assert str(e.value) == case.message


def _doc_tables():
  """({driver case: message}, {library case: outcome}) from the docs."""
  text = DOC.read_text(encoding="utf-8")
  driver = re.findall(r"^\| `tests/test_bad_inputs\.py::test_bad_input\[(\w+)"
                      r"\]` \|.*\| `(.*)` \|$", text, re.M)
  library = re.findall(r"^\| `tests/test_keras_habits\.py::test_library_case"
                       r"\[(\w+)\]` \| .* \| (.*) \|$", text, re.M)
  return dict(driver), dict(library), text


def test_docs_library_table_matches():
  """The docs' library table lists exactly CASES, each error case with its
  message, and the catalogue's case count adds up."""
  driver, library, text = _doc_tables()
  assert list(library) == list(CASES)
  for name, outcome in library.items():
    message = CASES[name].message
    if message is None:
      assert "UserInputError" not in outcome, name
    else:
      assert outcome == f"`UserInputError: {message}`", name
  total, commands, calls = map(int, re.search(
      r"It has (\d+) cases: (\d+) command lines \(the first table\) and "
      r"(\d+) calls", text).groups())
  assert (commands, calls) == (len(driver), len(library))
  assert total == commands + calls


def test_split_validation_keeps_pairs_and_labels_aligned():
  """Pairs and NumPy labels are cut at floor(n * (1 - fraction)), as
  Keras cuts arrays; bad fractions and datasets get one line."""
  a, b = [f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]
  y = np.arange(10)
  x_train, y_train, ((held_a, held_b), held_y) = task_inputs.split_validation(
      (a, b), y, None, 0.25)
  split_at = math.floor(10 * 0.75)
  assert x_train == (a[:split_at], b[:split_at])
  assert (held_a, held_b) == (a[split_at:], b[split_at:])
  assert list(y_train) == list(range(split_at))
  assert list(held_y) == list(range(split_at, 10))
  given = (["x"], ["0"])
  assert task_inputs.split_validation(a, y, given, 0.5)[2] is given
  for bad, message in ((1.5, "between 0 and 1"),
                       (0.95, "leaves 0 to train and 10 to validate")):
    with pytest.raises(UserInputError, match=message):
      task_inputs.split_validation(a, y, None, bad)
  with pytest.raises(UserInputError, match="pass validation_data="):
    task_inputs.split_validation(tf.data.Dataset.range(3), None, None, 0.1)


# --- TF's log lines ------------------------------------------------------------

def test_commands_quiet_tf_cpp_logs_unless_the_user_set_the_level(
    monkeypatch):
  monkeypatch.setattr(tf_logs, "has_gpu_driver", lambda: False)
  assert tf_logs.quiet_tf_logs({}) == "3"  # no cuInit line on CPU
  monkeypatch.setattr(tf_logs, "has_gpu_driver", lambda: True)
  assert tf_logs.quiet_tf_logs({}) == "2"  # a GPU's C++ errors stay
  assert tf_logs.quiet_tf_logs({"TF_CPP_MIN_LOG_LEVEL": "0"}) == "0"


_DRIVER_THEN_TF = """
import os
import keras_adapters.cli.run_classifier  # the driver, as its script runs it
import tensorflow as tf
tf.config.list_physical_devices()  # TF probes CUDA here
print(os.environ["TF_CPP_MIN_LOG_LEVEL"])
"""


@pytest.mark.parametrize("user_level", [None, "0"])
def test_driver_starts_without_tf_cpp_errors(user_level):
  """Imported as run_classifier.py imports it, the driver sets the level
  before TF loads: no `E ... failed call to cuInit` line on CPU machines
  (nor any other C++ line); a level the user set is kept."""
  env = subprocess_env()
  env.pop("TF_CPP_MIN_LOG_LEVEL")
  if user_level is not None:
    env["TF_CPP_MIN_LOG_LEVEL"] = user_level
  result = subprocess.run([sys.executable, "-c", _DRIVER_THEN_TF], cwd=REPO,
                          env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  expected = user_level or ("2" if tf_logs.has_gpu_driver() else "3")
  assert result.stdout.split() == [expected]
  if user_level is None and expected == "3":
    assert "cuInit" not in result.stderr and not re.search(
        r"^\S+ \S+: [IWE] ", result.stderr, re.M), result.stderr


def test_predict_and_evaluate_read_no_further_than_their_batches(
    sst2_classifier, sst2, capfd):
  """5 texts in batches of 4: the padded batches declare their count (2),
  so Keras runs 2 steps and TF logs no `Local rendezvous is aborting with
  status: OUT_OF_RANGE` line (it would at TF_CPP_MIN_LOG_LEVEL 0 or 1)."""
  texts, labels = sst2
  batches, n = sst2_classifier._eval_batches(texts[:5], batch_size=4)  # pylint: disable=protected-access
  assert n == 5 and int(batches.cardinality()) == 2
  assert sst2_classifier.predict(texts[:5], batch_size=4).shape == (5, 2)
  sst2_classifier.evaluate(texts[:5], labels[:5], batch_size=4)
  assert "Local rendezvous" not in capfd.readouterr().err
