"""A multi-task SavedModel whose tasks leave out blocks 0..k-1 computes
that shared trunk once per text: `serving_fanout` asks every task of every
text. Large tier: three tasks (a single-sentence classifier, a pair
classifier, a pair regressor) trained with `fit` from the trunk cache on
real SST-2, MRPC and STS-B rows, exported alone and together, reloaded in
a fresh process: each task's fan-out outputs equal its own single-task
SavedModel's, and the per-example routing of `serving_default`."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from harness import GLUE_DIR
from harness import REPO
from harness import subprocess_env

SEQ = 48
LEAVE_OUT = [0, 1, 2]


def _rows(task, split, n):
  with open(GLUE_DIR / task / f"{split}.tsv", encoding="utf-8") as f:
    return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:n + 1]


def _train(tmp_path):
  """{name: (export dir, is_pair, is_regression)} and the pack paths."""
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  sst, mrpc, stsb = (_rows("SST-2", "train", 32), _rows("MRPC", "train", 32),
                     _rows("STS-B", "train", 32))
  tasks = [
      ("mood", dict(labels=["bad", "good"]), [r[0] for r in sst],
       ["good" if r[1] == "1" else "bad" for r in sst]),
      ("same", dict(labels=["no", "yes"]),
       ([r[3] for r in mrpc], [r[4] for r in mrpc]),
       ["yes" if r[0] == "1" else "no" for r in mrpc]),
      ("similar", dict(regression=True),
       ([r[7] for r in stsb], [r[8] for r in stsb]),
       [float(r[9]) for r in stsb]),
  ]
  exported, packs = {}, []
  for seed, (name, facts, x, y) in enumerate(tasks):
    clf = AdapterTextClassifier.from_preset(
        max_seq_length=SEQ, seed=seed, name=name, leave_out=LEAVE_OUT,
        **facts)
    clf.fit(x, y, batch_size=16, epochs=1, verbose=0, trunk_cache=True)
    packs.append(clf.save_adapters(str(tmp_path / f"{name}.npz")))
    exported[name] = str(clf.export(str(tmp_path / name / "1")))
  return exported, packs


_SERVE = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # the raw-text signatures' ops
request = json.loads(sys.stdin.read())
multi = tf.saved_model.load(request["multi"])
fanout = multi.signatures["serving_fanout"](
    tasks=tf.constant(request["tasks"]), text_a=tf.constant(request["a"]),
    text_b=tf.constant(request["b"]))
routed = multi.signatures["serving_default"](
    task=tf.constant([t for t in request["tasks"] for _ in request["a"]]),
    text_a=tf.constant(request["a"] * len(request["tasks"])),
    text_b=tf.constant(request["b"] * len(request["tasks"])))
own = {}
for name, path in request["single"].items():
  fn = tf.saved_model.load(path).signatures["serving_default"]
  args = dict(text_a=tf.constant(request["a"]))
  if "text_b" in fn.structured_input_signature[1]:
    args["text_b"] = tf.constant(request["b"])
  own[name] = fn(**args)["probabilities"].numpy().tolist()
print(json.dumps(dict(
    fanout=fanout["probabilities"].numpy().tolist(),
    fanout_labels=fanout["label"].numpy().astype(str).tolist(),
    routed=routed["probabilities"].numpy().tolist(),
    signatures=sorted(multi.signatures), own=own)))
"""


@pytest.mark.large
def test_fanout_equals_each_tasks_own_saved_model(tmp_path):
  from keras_adapters.serving import export_multitask  # pylint: disable=g-import-not-at-top
  single, packs = _train(tmp_path)
  multi = export_multitask(packs, str(tmp_path / "multi" / "1"))
  dev = _rows("MRPC", "dev", 4)
  tasks = ["similar", "mood", "same"]
  request = dict(multi=multi, single=single, tasks=tasks,
                 a=[r[3] for r in dev], b=[r[4] for r in dev])
  served = subprocess.run(
      [sys.executable, "-c", _SERVE], input=json.dumps(request), cwd=REPO,
      env=subprocess_env(), capture_output=True, text=True, timeout=900)
  assert served.returncode == 0, served.stderr[-3000:]
  out = json.loads(served.stdout.strip().splitlines()[-1])
  assert "serving_fanout" in out["signatures"]
  fanout = np.array(out["fanout"])  # [texts, tasks, max classes]
  assert fanout.shape == (4, 3, 2)
  routed = np.array(out["routed"]).reshape(3, 4, 2).transpose(1, 0, 2)
  for j, name in enumerate(tasks):
    own = np.array(out["own"][name])
    classes = own.shape[1]
    np.testing.assert_allclose(fanout[:, j, :classes], own, atol=1e-5,
                               err_msg=name)
    np.testing.assert_allclose(routed[:, j, :classes], own, atol=1e-5,
                               err_msg=name)
  # the tasks differ: not one network answering for all
  assert np.abs(fanout[:, 1, :] - fanout[:, 2, :]).max() > 1e-3
  assert all(label in ("bad", "good") for label in
             np.array(out["fanout_labels"])[:, 1])
