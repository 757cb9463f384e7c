"""A generic (CSV) sentence-pair task trained by run_classifier.py and
exported by `python -m keras_adapters.serving.export`, single-task and
--multitask: the reloaded SavedModel (fresh process) uses text_b and
matches the in-memory model."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from harness import GLUE_DIR, REPO, subprocess_env
from keras_adapters import AdapterTextClassifier

pytestmark = pytest.mark.large  # driver and exporter subprocesses

SEQ = 64
_CHILD = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # the raw-text signature's ops
spec = json.load(sys.stdin)
out = {}
for name, (path, kw) in spec.items():
  fn = tf.saved_model.load(path).signatures["serving_default"]
  out[name] = fn(**{k: tf.constant(v) for k, v in kw.items()})[
      "probabilities"].numpy().tolist()
print(json.dumps(out))
"""


def _run(args, **kw):
  result = subprocess.run([sys.executable] + args, cwd=REPO, text=True,
                          capture_output=True, env=subprocess_env(),
                          timeout=1800, **kw)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def _without_is_pair(pack, path):
  """A copy of `pack` as older versions saved it: no "is_pair"."""
  with np.load(pack) as data:
    arrays = {k: data[k] for k in data.files}
  config = json.loads(str(arrays["__config__"]))
  del config["is_pair"]
  arrays["__config__"] = np.array(json.dumps(config))
  np.savez(path, **arrays)
  return path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
  """Real MRPC pairs as a generic CSV (named columns, yes/no labels),
  trained 2 steps by the driver, then exported by the CLI: --multitask from
  the run's --output_dir, and single-task from a copy of its pack without
  "is_pair" (as older versions saved packs) with --is_pair."""
  root = tmp_path_factory.mktemp("generic_pairs")
  with open(GLUE_DIR / "MRPC" / "train.tsv", encoding="utf-8") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:65]
  data = root / "data"
  data.mkdir()
  with open(data / "train.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["first", "second", "same"])
    w.writerows([r[3], r[4], "yes" if r[0] == "1" else "no"] for r in rows)
  out = root / "run"
  _run(["run_classifier.py", "--task_name=generic", f"--data_dir={data}",
        "--text_a_column=first", "--text_b_column=second",
        "--label_column=same", "--custom_task_name=paraphrase",
        "--do_train", f"--output_dir={out}",
        f"--max_seq_length={SEQ}", "--num_train_epochs=1", "--seed=5"])
  old = _without_is_pair(out / "adapter_pack.npz", root / "old_pack.npz")
  _run(["-m", "keras_adapters.serving.export", f"--adapter_pack={old}",
        "--is_pair", f"--export_dir={root / 'single'}"])
  _run(["-m", "keras_adapters.serving.export", "--multitask",
        f"--output_dir={out}", f"--export_dir={root / 'multi'}"])
  return root, [r[3] for r in rows[:6]], [r[4] for r in rows[:6]]


def test_exports_use_text_b_and_match_the_model(pairs):
  root, a, b = pairs
  other_b = b[1:] + b[:1]
  spec = dict(
      single=[str(root / "single"), dict(text_a=a, text_b=b)],
      single_other=[str(root / "single"), dict(text_a=a, text_b=other_b)],
      multi=[str(root / "multi"), dict(task=["paraphrase"] * 6, text_a=a,
                                        text_b=b)],
      multi_other=[str(root / "multi"), dict(task=["paraphrase"] * 6, text_a=a,
                                              text_b=other_b)])
  served = json.loads(_run(["-c", _CHILD], input=json.dumps(spec)))
  served = {k: np.array(v) for k, v in served.items()}
  model = AdapterTextClassifier.load_adapters(
      str(root / "run" / "adapter_pack.npz"))
  assert model.labels == ["no", "yes"]
  assert model.task_config["name"] == "paraphrase"  # --custom_task_name
  for name, texts_b in (("single", b), ("single_other", other_b)):
    expected = model.predict_proba((a, texts_b))
    np.testing.assert_allclose(served[name], expected, atol=1e-5)
    np.testing.assert_allclose(served[name.replace("single", "multi")],
                               expected, atol=1e-5)
  assert np.abs(served["single"] - served["single_other"]).max() > 1e-4


def test_pack_without_is_pair_needs_the_flag(pairs, tmp_path):
  """Packs of older versions did not record is_pair: a generic one is not
  guessed (with --is_pair, the fixture exported it)."""
  root, _, _ = pairs
  old = root / "old_pack.npz"
  result = subprocess.run(
      [sys.executable, "-m", "keras_adapters.serving.export",
       f"--adapter_pack={old}", f"--export_dir={tmp_path / 'e'}"], cwd=REPO,
      text=True, capture_output=True, env=subprocess_env(), timeout=600)
  assert result.returncode == 2
  # TF's own start-up lines (CUDA probing) may come first; ours is one line.
  assert "Traceback" not in result.stderr
  assert [l for l in result.stderr.splitlines()
          if l.startswith("export:")] == [
      f"export: error: {old} does not record whether its task takes one text "
      "or a pair (saved by an older version); pass --is_pair or --nois_pair"]
  assert not (tmp_path / "e").exists()
  assert (root / "single" / "saved_model.pb").is_file()
