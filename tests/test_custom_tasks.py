"""Custom tasks by name: packs trained with `fit` on one's own data record
the task's name, and go into one multi-task SavedModel that serves each
example by its task."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from harness import GLUE_DIR
from harness import REPO
from harness import subprocess_env
from keras_adapters.errors import UserInputError
from keras_adapters.serving import checks

SEQ = 32


def _pack(path, **config):
  """A pack file holding only its config (all check_packs reads)."""
  np.savez(path, __config__=np.array(json.dumps(
      dict(fine_tune_mode="adapter", adapter_type="houlsby", adapter_size=64,
           **config))))
  return str(path)


def test_packs_are_served_by_their_recorded_or_given_names(tmp_path):
  spam = _pack(tmp_path / "a.npz", task_name="generic", name="spam")
  mrpc = _pack(tmp_path / "b.npz", task_name="mrpc")
  unnamed = _pack(tmp_path / "c.npz", task_name="generic")
  configs, _ = checks.check_packs([spam, mrpc])
  assert [c["name"] for c in configs] == ["spam", "mrpc"]
  with pytest.raises(UserInputError) as e:
    checks.check_packs([spam, unnamed])
  assert str(e.value).startswith(f"{unnamed}: its task has no name")
  assert "name='spam'" in str(e.value) and "--task_names" in str(e.value)
  configs, _ = checks.check_packs([spam, unnamed],
                                  task_names=["spam", "ham"])
  assert [c["name"] for c in configs] == ["spam", "ham"]
  with pytest.raises(UserInputError, match="distinct task names"):
    checks.check_packs([spam, unnamed], task_names=["x", "x"])
  with pytest.raises(UserInputError, match="task name 'no spaces'"):
    checks.check_packs([spam, unnamed], task_names=["ok", "no spaces"])
  with pytest.raises(UserInputError, match="1 task names for 2 packs"):
    checks.check_packs([spam, unnamed], task_names=["ok"])


def _rows(task, split, n):
  with open(GLUE_DIR / task / f"{split}.tsv", encoding="utf-8") as f:
    return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:n + 1]


_SERVE = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # the raw-text signature's ops
path, request = sys.argv[1], json.loads(sys.stdin.read())
fn = tf.saved_model.load(path).signatures["serving_default"]
out = fn(**{k: tf.constant(v) for k, v in request.items()})
print(json.dumps(out["probabilities"].numpy().tolist()))
"""


@pytest.mark.large
def test_two_fit_trained_custom_tasks_share_one_saved_model(tmp_path):
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.serving import export_multitask  # pylint: disable=g-import-not-at-top
  sst = _rows("SST-2", "train", 32)
  mood = AdapterTextClassifier.from_preset(
      labels=["bad", "good"], max_seq_length=SEQ, seed=1, name="mood")
  mood.fit([r[0] for r in sst], ["good" if r[1] == "1" else "bad" for r in sst],
           batch_size=16, epochs=1, verbose=0)
  mrpc = _rows("MRPC", "train", 32)
  same = AdapterTextClassifier.from_preset(
      labels=["no", "yes"], max_seq_length=SEQ, seed=2, name="same-meaning")
  same.fit(([r[3] for r in mrpc], [r[4] for r in mrpc]),
           ["yes" if r[0] == "1" else "no" for r in mrpc], batch_size=16,
           epochs=1, verbose=0)
  packs = [mood.save_adapters(str(tmp_path / "mood.npz")),
           same.save_adapters(str(tmp_path / "same.npz"))]
  export_multitask(packs, str(tmp_path / "served" / "1"))
  dev = _rows("MRPC", "dev", 3)
  texts = ["a gripping, funny film", "a dull mess"]
  request = dict(task=["same-meaning", "mood", "same-meaning", "mood",
                       "same-meaning"],
                 text_a=[dev[0][3], texts[0], dev[1][3], texts[1], dev[2][3]],
                 text_b=[dev[0][4], "", dev[1][4], "", dev[2][4]])
  served = subprocess.run(
      [sys.executable, "-c", _SERVE, str(tmp_path / "served" / "1")],
      input=json.dumps(request), cwd=REPO, env=subprocess_env(),
      capture_output=True, text=True, timeout=900)
  assert served.returncode == 0, served.stderr[-3000:]
  served = np.array(json.loads(served.stdout.strip().splitlines()[-1]))
  own_same = same.predict_proba(([r[3] for r in dev], [r[4] for r in dev]))
  own_mood = mood.predict_proba(texts)
  np.testing.assert_allclose(served[[0, 2, 4]], own_same, atol=1e-5)
  np.testing.assert_allclose(served[[1, 3]], own_mood, atol=1e-5)
