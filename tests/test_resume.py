"""Crash and resume, determinism, and saves that a crash cannot corrupt.

Crashes are injected deterministically (keras_adapters/saving/faults.py): the
environment variable KERAS_ADAPTERS_FAULT makes a run `os._exit` right after
a chosen step, or in the middle of a chosen write (after its temp file
exists, before the rename). No timed kills, no sleeps.

Default tier (in-process, tiny models): `fit_resumable` stopped and resumed
ends with the weights of an unbroken fit; the classifier's training batches
skip to where a resumed run continues; the fault hook itself.

Large tier (`--run_large`): tiny real runs of run_classifier.py, MiniLM with
adapters on 256 real MRPC train rows (16 steps of 16 at max_seq_length 48, a
checkpoint every 4 steps), evaluated on 128 real dev rows, started together
by `reliability_runs` (test_frozen.py uses them too through conftest's
`reliability` fixture):

* reference, repeat: one command run twice (determinism);
* reference_deterministic: the same with --deterministic;
* killed: the --deterministic command killed after step 1, then after
  step 6, then in the middle of its first checkpoint write (ckpt-8, having
  resumed from ckpt-4), then after step 16 (the last), then in the middle
  of the pack write, then of the eval_results.txt write, each time re-run,
  and finally run to its end; then the exporter killed in the middle of the
  SavedModel write and re-run;
* task_b (test_frozen.py): after the reference, an SST-2 run, then the
  reference's pack predicting MRPC test again.

Resumption is exact only with --deterministic: by default dropout uses
tf_keras' legacy stateful random ops, whose state starts afresh in every
process and is not in checkpoints; --deterministic draws dropout from
tf.random.Generators that are checkpointed (docs/RELIABILITY.md).
"""

import re
import subprocess
import sys

import numpy as np
import pytest

import harness
from harness import REPO
from keras_adapters.saving import faults
from reliability import SAVE_EVERY
from reliability import TOTAL_STEPS

FAULT = faults.ENV


def _results(out):
  return (out / "eval_results.txt").read_text()


def _pack(path):
  with np.load(path) as data:
    return {k: data[k] for k in data.files if k != "__config__"}


def _worst(pack_a, pack_b):
  assert pack_a.keys() == pack_b.keys()
  return max(float(np.abs(pack_a[k] - pack_b[k]).max()) for k in pack_a)


# --- default tier: in-process ------------------------------------------------

def _tiny_classifier(tiny_encoder, total_steps):
  """A tiny random BERT with adapters and no dropout, so two fits of it
  are bit for bit repeatable."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters.training import optimizers  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import build_classifier  # pylint: disable=g-import-not-at-top
  model, _ = build_classifier(
      tiny_encoder(max_sequence_length=16, dropout_rate=0.0,
                   attention_dropout_rate=0.0), 2, "adapter", 4,
      dropout_rate=0.0)
  model.compile(optimizer=optimizers.create_optimizer(3e-3, total_steps, 0.1),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  return model


def _batches(skip):
  """The training batches as the drivers make them: repeated, reshuffled
  each epoch by a fixed seed (8 batches of 8 per epoch), `skip` in."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 100, [64, 16]).astype(np.int32)
  x = dict(input_word_ids=ids, input_mask=np.ones_like(ids),
           input_type_ids=np.zeros_like(ids))
  y = (ids[:, 0] % 2).astype(np.int32)
  ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
      64, seed=7, reshuffle_each_iteration=True).repeat().batch(
          8, drop_remainder=True)
  return ds.skip(skip)


def _fit(model, out, stop_at):
  """fit_resumable in `out` up to step `stop_at` (a checkpoint every 4)."""
  from keras_adapters.training import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.fit_resumable(model, _batches, 8, stop_at, str(out),
                                save_checkpoints_steps=4)


def test_fit_resumable_continues_where_it_stopped(tiny_encoder, tmp_path,
                                                  capsys):
  """12 steps (8 per epoch) unbroken, and stopped at step 5 then resumed
  in a fresh model: the same weights. The resumed fit must restore the
  weights, the Adam moments and the step, and skip the 5 batches already
  trained on (across the epoch boundary at step 8)."""
  total = 12
  unbroken = _tiny_classifier(tiny_encoder, total)
  assert _fit(unbroken, tmp_path / "a", total) == total
  first = _tiny_classifier(tiny_encoder, total)
  assert _fit(first, tmp_path / "b", 5) == 5
  at_stop = [v.numpy() for v in first.trainable_variables]
  resumed = _tiny_classifier(tiny_encoder, total)
  assert _fit(resumed, tmp_path / "b", total) == total
  assert "ckpt-5 at step 5." in capsys.readouterr().out  # "Resuming from"
  expected = [v.numpy() for v in unbroken.trainable_variables]
  got = [v.numpy() for v in resumed.trainable_variables]
  moved = max(float(np.abs(a - b).max()) for a, b in zip(got, at_stop))
  assert moved > 1e-4  # the resumed fit trained on
  for a, b in zip(got, expected):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_train_batches_skip_resumes_the_epoch_order(tmp_path):
  """The classifier's training batches (real MRPC pairs, tokenized by its
  preprocessor), positioned `skip` in, continue the unbroken order: what
  the drivers' resume relies on."""
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor  # pylint: disable=g-import-not-at-top
  mrpc = harness.glue_subset(tmp_path / "mrpc", dict(train=40))
  examples = glue.get_processor("mrpc").get_examples(str(mrpc), "train")
  texts = ([e.text_a for e in examples], [e.text_b for e in examples])
  labels = [e.label for e in examples]
  model = AdapterTextClassifier(
      harness.tiny_encoder(vocab_size=30522, hidden_size=8, num_layers=1,
                           inner_dim=8, max_sequence_length=16),
      AdapterTextPreprocessor(str(harness.DATA / "bert_vocab" / "vocab.txt"),
                              True, 16), task_name="MRPC", seed=3)
  ids = lambda ds, n: [x["input_word_ids"].numpy().tolist()
                       for x, _ in ds.take(n)]
  unbroken, steps = model.train_batches(texts, labels, 8)
  assert steps == 5
  order = ids(unbroken, 12)  # 2 epochs and 2 batches
  assert order[:5] != order[5:10]  # reshuffled each epoch
  for skip in (1, 3, 7):
    assert ids(model.train_batches(texts, labels, 8, skip)[0],
               12 - skip) == order[skip:], skip


def test_fault_points_fire_only_where_set(monkeypatch):
  """The hook does nothing unless KERAS_ADAPTERS_FAULT is set; then it
  exits at the named step, and at the N-th write of the named kind only."""
  exits = []

  def fake_exit(code):
    exits.append(code)
    raise SystemExit(code)
  monkeypatch.setattr(faults.os, "_exit", fake_exit)
  monkeypatch.setattr(faults, "_writes", {})
  monkeypatch.delenv(FAULT, raising=False)
  for step in range(1, 20):
    faults.after_step(step)
  faults.mid_write("pack", "x")
  assert not exits and not faults.enabled() and faults._writes == {}  # pylint: disable=protected-access
  monkeypatch.setenv(FAULT, "step:3,write:results:2")
  faults.after_step(2)
  with pytest.raises(SystemExit):
    faults.after_step(3)
  faults.mid_write("pack", "x")
  faults.mid_write("results", "x")  # the 1st: not this one
  with pytest.raises(SystemExit):
    faults.mid_write("results", "x")
  assert exits == [faults.EXIT_CODE] * 2
  monkeypatch.setenv(FAULT, "write:checkpoints")
  with pytest.raises(ValueError, match="cannot parse"):
    faults.enabled()


# --- large tier: the drivers, killed and re-run (tests/reliability.py) ---------

def _killed(link, point):
  """Asserts the run died by the injected fault `point`, nothing else."""
  result = link["result"]
  assert result.returncode == faults.EXIT_CODE, result.stderr[-3000:]
  assert f"fault injected: {point}" in result.stderr, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  return link


def _no_results(link):
  results = [f for f in link["files"]
             if not f.startswith(("checkpoints/", "logs/"))]
  assert not [f for f in results if not f.rsplit("/", 1)[-1].startswith(
      ".")], results  # at most hidden temp files
  return link


def _latest_step(checkpoints):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest = tf.train.latest_checkpoint(str(checkpoints))
  return latest and int(latest.rsplit("-", 1)[1])


def _trained_weights(checkpoint):
  """The pack-keyed trained variables stored in a run's checkpoint; it
  must restore completely."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras_adapters.saving import adapter_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.models.text_classifier import build_classifier  # pylint: disable=g-import-not-at-top
  model, encoder = build_classifier(harness.minilm()[0], 2, "adapter", 64)
  tf.train.Checkpoint(model=model).read(
      checkpoint).assert_existing_objects_matched()
  ids = set(map(id, encoder.weights))
  return {adapter_pack._key(v, ids): v.numpy()  # pylint: disable=protected-access
          for v in model.trainable_variables}


def _same_as_reference(root, out):
  """The run in `out` ended as the unbroken --deterministic run: the same
  dev metrics and step (byte for byte), weights within 1e-6 (a float32
  ulp, as between two unbroken runs), test probabilities within 1e-5.
  Returns the max weight difference."""
  a = root / "reference_deterministic"
  assert _results(out) == _results(a)
  worst = _worst(_pack(a / "adapter_pack.npz"), _pack(out / "adapter_pack.npz"))
  assert worst <= 1e-6, worst
  probabilities = [np.loadtxt(d / "test_results.tsv") for d in (a, out)]
  assert np.abs(probabilities[0] - probabilities[1]).max() <= 1e-5
  return worst


@pytest.mark.large
def test_same_seed_same_results(reliability):
  """Two runs of one command (default settings, CPU): identical metrics and
  predicted labels; weights equal to within a few float32 ulp (usually bit
  for bit; rarely, under heavy load, 1 ulp apart: docs/RELIABILITY.md)."""
  root, futures = reliability
  harness.checked(futures["reference"].result())
  harness.checked(futures["repeat"].result())
  a, b = root / "reference", root / "repeat"
  assert f"global_step = {TOTAL_STEPS}" in _results(a)
  assert _results(a) == _results(b)
  assert (a / "MRPC.tsv").read_bytes() == (b / "MRPC.tsv").read_bytes()
  probabilities = [np.loadtxt(d / "test_results.tsv") for d in (a, b)]
  assert np.abs(probabilities[0] - probabilities[1]).max() <= 1e-5
  worst = _worst(_pack(a / "adapter_pack.npz"), _pack(b / "adapter_pack.npz"))
  print(f"\nrepeat run: max weight diff {worst}")
  assert worst <= 1e-6


@pytest.mark.large
def test_killed_after_steps_1_6_and_16_resumes_to_the_same_result(
    reliability):
  root, futures = reliability
  links = futures["killed"].result()
  harness.checked(futures["reference_deterministic"].result())
  step1, step6, step16 = (links[f] for f in ("step:1", "step:6", "step:16"))
  # After step 1: no checkpoint yet (the first is at step 4), no result.
  _no_results(_killed(step1, "step:1"))
  assert step1["kept"].get("checkpoints") is None or not _latest_step(
      step1["kept"]["checkpoints"])
  # Re-run, killed after step 6: it started over (nothing to resume) and
  # kept ckpt-4.
  _no_results(_killed(step6, "step:6"))
  assert "Resuming" not in step6["result"].stdout
  assert _latest_step(step6["kept"]["checkpoints"]) == SAVE_EVERY
  # (The next re-run died writing ckpt-8: see the test below.) Re-run,
  # killed after the last step: its checkpoint saved, no pack yet.
  _no_results(_killed(step16, "step:16"))
  assert re.search(r"Resuming from \S+ckpt-4 at step 4\.",
                   step16["result"].stdout), step16["result"].stdout[-2000:]
  assert _latest_step(step16["kept"]["checkpoints"]) == TOTAL_STEPS
  # The re-runs after it only save, evaluate and predict.
  final = links[None]
  harness.checked(final["result"])
  assert (f"Training already finished at step {TOTAL_STEPS}"
          in final["result"].stdout)
  out = root / "killed"
  worst = _same_as_reference(root, out)
  # Not vacuous: the run resumed at step 4 moved away from ckpt-4 and ended
  # nearer the unbroken run than that checkpoint.
  start = _trained_weights(str(step6["kept"]["checkpoints"] / "ckpt-4"))
  final_pack = _pack(out / "adapter_pack.npz")
  reference = _pack(root / "reference_deterministic" / "adapter_pack.npz")
  l2 = lambda x, y: np.sqrt(sum(np.sum((x[k] - y[k]) ** 2) for k in start))
  moved, deviation = l2(final_pack, start), l2(final_pack, reference)
  print(f"\nresumed at step 4: max |resumed - unbroken| = {worst:.2e}; L2 "
        f"moved {moved:.3e} since ckpt-4, deviation {deviation:.3e}")
  assert deviation < moved


@pytest.mark.large
def test_killed_in_writes_leaves_nothing_loadable_and_reruns_complete(
    reliability):
  """Killed in the middle of a checkpoint write, of the pack write and of
  the eval_results.txt write: each time, only hidden temp files are
  partial, what the run had published before still loads, and a re-run of
  the same command completes as the unbroken run."""
  from keras_adapters.saving import adapter_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.errors import UserInputError  # pylint: disable=g-import-not-at-top
  root, futures = reliability
  links = futures["killed"].result()
  harness.checked(futures["reference_deterministic"].result())
  ckpt, pack, results = (links[f] for f in (
      "write:checkpoint:1", "write:pack", "write:results"))
  out = root / "killed"
  # Resumed from ckpt-4, killed in ckpt-8's write: its shards sit in
  # ckpt-8_temp/, the `checkpoint` file still names ckpt-4, which restores
  # completely.
  _no_results(_killed(ckpt, "write:checkpoint:1"))
  assert re.search(r"Resuming from \S+ckpt-4 at step 4\.",
                   ckpt["result"].stdout)
  assert "checkpoints/ckpt-8_temp" in "\n".join(ckpt["files"]), ckpt["files"]
  assert not [f for f in ckpt["files"] if f.startswith("checkpoints/ckpt-8.")]
  saved = ckpt["kept"]["checkpoints"]
  assert _latest_step(saved) == SAVE_EVERY
  _trained_weights(str(saved / "ckpt-4"))
  # In the pack write (training had finished at step 16): no
  # adapter_pack.npz, and its half-written temp file is not a pack.
  _killed(pack, "write:pack")
  assert (f"Training already finished at step {TOTAL_STEPS}"
          in pack["result"].stdout)
  assert "adapter_pack.npz" not in pack["files"]
  temps = [name for name in pack["temps"]
           if name.startswith(".adapter_pack.npz.")]
  assert temps, pack["hidden"]
  partial = root / "partial_pack.npz"
  partial.write_bytes(pack["temps"][temps[0]])
  with pytest.raises(UserInputError, match="not a readable adapter pack"):
    adapter_pack.read_pack(str(partial))
  # In the eval_results.txt write: the pack is there and loads; the results
  # are only in a hidden temp file, and only partly.
  _killed(results, "write:results")
  assert "eval_results.txt" not in results["files"]
  assert "adapter_pack.npz" in results["files"]
  half = [text for name, text in results["temps"].items()
          if name.startswith(".eval_results.txt.")]
  assert half and all(b"global_step" not in text for text in half)
  # The clean re-run completes as the unbroken run did.
  harness.checked(links[None]["result"])
  _same_as_reference(root, out)
  adapter_pack.read_pack(str(out / "adapter_pack.npz"))
  # The exporter killed in its SavedModel write: no export_dir, only the
  # hidden .tmp-export-* sibling; the re-run exports.
  export, export_again = links["export:write:export"], links["export:None"]
  result = export["result"]
  assert result.returncode == faults.EXIT_CODE, result.stderr[-3000:]
  assert "fault injected: write:export" in result.stderr
  assert "1" not in export["listing"], export["listing"]
  assert [n for n in export["listing"] if n.startswith(".tmp-export-")]
  harness.checked(export_again["result"])
  assert (root / "exports" / "1" / "saved_model.pb").is_file()


_SAVER = r"""
import sys
import numpy as np
import tensorflow as tf
import tf_keras
from keras_adapters.saving import adapter_pack, atomic
from keras_adapters.training import checkpoints
out = sys.argv[1]
backbone = tf_keras.layers.Dense(8, trainable=False)
model = tf_keras.Sequential([tf_keras.Input((8,)), backbone,
                             tf_keras.layers.Dense(256)])
model.compile(optimizer="adam")
manager = checkpoints.checkpoint_manager(model, out)
for version in (1, 2):  # every save holds its version in every trained weight
  for v in model.trainable_variables:
    v.assign(tf.fill(v.shape, float(version)))
  manager.save(checkpoint_number=version)
  adapter_pack.save_adapter_pack(out + "/adapter_pack.npz", model, backbone,
                                 dict(version=version))
  atomic.write_atomically(out + "/results.txt", f"version = {version}\n")
print("all saved", flush=True)
"""


@pytest.mark.large
@pytest.mark.parametrize("kind", ["checkpoint", "pack", "results"])
def test_killed_in_the_second_write_keeps_the_first_complete(kind, tmp_path):
  """A process saves version 1 (checkpoint, pack, results file) and is
  killed in the middle of writing version 2 of `kind`: what loads is
  version 1, complete; version 2 exists only as a hidden temp."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters.saving import adapter_pack  # pylint: disable=g-import-not-at-top
  result = subprocess.run(
      [sys.executable, "-c", _SAVER, str(tmp_path)], cwd=REPO,
      env=harness.driver_env(**{FAULT: f"write:{kind}:2"}),
      capture_output=True, text=True, timeout=600)
  assert result.returncode == faults.EXIT_CODE, result.stderr[-3000:]
  assert "all saved" not in result.stdout
  config, arrays = adapter_pack.read_pack(str(tmp_path / "adapter_pack.npz"))
  pack_version = config["version"]
  assert all((a == pack_version).all() for a in arrays.values())
  backbone = tf_keras.layers.Dense(8, trainable=False)
  model = tf_keras.Sequential([tf_keras.Input((8,)), backbone,
                               tf_keras.layers.Dense(256)])
  latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
  tf.train.Checkpoint(model=model).read(latest).expect_partial()
  saved = int(latest.rsplit("-", 1)[1])
  assert all((v.numpy() == saved).all() for v in model.trainable_variables)
  text = (tmp_path / "results.txt").read_text()
  hidden = sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(
      ".") or p.name.endswith("_temp"))
  # The write it died in is version 2 of `kind`; everything before it is
  # complete and published, and only `kind` left a temp behind.
  expected = dict(checkpoint=(1, 1, "version = 1\n"),
                  pack=(2, 1, "version = 1\n"),
                  results=(2, 2, "version = 1\n"))[kind]
  assert (saved, pack_version, text) == expected
  marker = dict(checkpoint="ckpt-2_temp", pack=".adapter_pack.npz.",
                results=".results.txt.")[kind]
  assert [h for h in hidden if h.startswith(marker)], hidden
  assert all(h.startswith(marker) for h in hidden), hidden
