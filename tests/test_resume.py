"""Crash and resume, determinism, and saves that a SIGKILL cannot corrupt.

Tiny real runs of run_classifier.py: MiniLM with adapters on 256 real MRPC
train rows (16 steps of 16 at max_seq_length 48, a checkpoint every 4 steps),
evaluated on 128 real dev rows. `reliability_runs` starts them all at once in
the background (test_frozen.py uses them too):

* reference: one uninterrupted run;
* repeat: the same command again (determinism);
* reference_deterministic: one uninterrupted run with --deterministic;
* resume: that command SIGKILLed at a random moment after its first
  checkpoint, then started again with the same command;
* task_b: after the reference, an SST-2 run, then the reference's pack
  predicting MRPC test again (test_frozen.py).

Resumption is exact only with --deterministic: by default dropout uses
tf_keras' legacy stateful random ops, whose state starts afresh in every
process and is not in checkpoints; --deterministic draws dropout from
tf.random.Generators that are checkpointed (docs/RELIABILITY.md).
"""

import concurrent.futures
import functools
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness import GLUE_DIR
from harness import REPO
from harness import subprocess_env
from keras_adapters import presets

MRPC, SST2 = GLUE_DIR / "MRPC", GLUE_DIR / "SST-2"
pytestmark = pytest.mark.skipif(not (MRPC.is_dir() and SST2.is_dir()),
                                reason="real MRPC/SST-2 not found")

TOTAL_STEPS, SAVE_EVERY, LEARNING_RATE, WARMUP = 16, 4, 1e-3, 0.1
FLAGS = ["--task_name=MRPC", "--do_train", "--do_eval", "--do_predict",
         "--max_seq_length=48", "--train_batch_size=16",
         "--num_train_epochs=1", f"--save_checkpoints_steps={SAVE_EVERY}",
         f"--learning_rate={LEARNING_RATE}", f"--warmup_proportion={WARMUP}"]
DETERMINISTIC = ["--deterministic"]
MINILM_CACHE = presets.cache_dir(presets.DEFAULT_PRESET)
TIMEOUT = 1800  # generous: CI machines may be busy


def file_hashes(root):
  """{relative path: sha256} of every file under root."""
  found = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = hashlib.sha256(
            f.read()).hexdigest()
  return found


def _subset(source, target, rows):
  """target/: the header and the first rows[split] rows of each split."""
  target.mkdir(parents=True, exist_ok=True)
  for split, n in rows.items():
    lines = (source / f"{split}.tsv").read_text(
        encoding="utf-8-sig").splitlines()
    (target / f"{split}.tsv").write_text("\n".join(lines[:n + 1]) + "\n",
                                         encoding="utf-8")
  return target


def _run(args, timeout=TIMEOUT):
  env = dict(subprocess_env(), TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, str(REPO / "run_classifier.py"),
                         *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout)


def _checked(result):
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  return result


def _kill_and_resume(args, out, rng):
  """Starts the run, SIGKILLs it 0-2 s after its first checkpoint exists,
  keeps a copy of the checkpoint it will resume from, and runs the same
  command again. Returns (killed_returncode, files at the kill, delay,
  copy of the checkpoints at the kill, the second run)."""
  env = dict(subprocess_env(), TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.Popen(
      [sys.executable, str(REPO / "run_classifier.py"), *args], cwd=REPO,
      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  state = out / "checkpoints" / "checkpoint"
  deadline = time.time() + TIMEOUT
  while not state.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  delay = rng.uniform(0, 2)
  time.sleep(delay)
  proc.send_signal(signal.SIGKILL)
  _, stderr = proc.communicate()
  at_kill = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                   if p.is_file())
  kept = out.parent / (out.name + "_checkpoints_at_kill")
  shutil.copytree(out / "checkpoints", kept)
  return proc.returncode, at_kill, delay, kept, _run(args), stderr


@functools.lru_cache(maxsize=None)
def reliability_runs(root):
  """{name: Future} of the runs described above, started once per session
  under `root` (a str)."""
  root = Path(root)
  cache_before = file_hashes(MINILM_CACHE)  # the shared pretrained backbone
  data = _subset(MRPC, root / "mrpc", dict(train=256, dev=128, test=64))
  sst2 = _subset(SST2, root / "sst2", dict(train=64))
  command = lambda out: FLAGS + [f"--data_dir={data}", f"--output_dir={out}"]
  pool = concurrent.futures.ThreadPoolExecutor(4)
  futures = {
      "reference": pool.submit(_run, command(root / "reference")),
      "repeat": pool.submit(_run, command(root / "repeat")),
      "reference_deterministic": pool.submit(
          _run, command(root / "reference_deterministic") + DETERMINISTIC),
      "resume": pool.submit(_kill_and_resume,
                            command(root / "resume") + DETERMINISTIC,
                            root / "resume", random.Random()),
  }

  def task_b():
    _checked(futures["reference"].result())
    before = file_hashes(root / "reference")
    trained_b = _run(["--task_name=SST-2", "--do_train", f"--data_dir={sst2}",
                      "--max_seq_length=32", "--train_batch_size=16",
                      "--num_train_epochs=1", f"--output_dir={root / 'b'}"])
    predicted_a = _run([
        "--task_name=MRPC", "--do_predict", f"--data_dir={data}",
        "--max_seq_length=48", f"--output_dir={root / 'a_again'}",
        f"--adapter_pack={root / 'reference' / 'adapter_pack.npz'}"])
    return before, cache_before, trained_b, predicted_a

  futures["task_b"] = pool.submit(task_b)
  pool.shutdown(wait=False)
  return root, futures


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return reliability_runs(str(tmp_path_factory.getbasetemp() / "reliability"))


def _results(out):
  return (out / "eval_results.txt").read_text()


def _pack(out):
  with np.load(out / "adapter_pack.npz") as data:
    return {k: data[k] for k in data.files if k != "__config__"}


def test_same_seed_same_results(runs):
  """Two runs of one command (default settings, CPU): identical metrics and
  predicted labels; weights equal to within a few float32 ulp (usually bit
  for bit; rarely, under heavy load, 1 ulp apart: docs/RELIABILITY.md)."""
  root, futures = runs
  _checked(futures["reference"].result())
  _checked(futures["repeat"].result())
  a, b = root / "reference", root / "repeat"
  assert f"global_step = {TOTAL_STEPS}" in _results(a)
  assert _results(a) == _results(b)
  assert (a / "MRPC.tsv").read_bytes() == (b / "MRPC.tsv").read_bytes()
  probabilities = [np.loadtxt(d / "test_results.tsv") for d in (a, b)]
  assert np.abs(probabilities[0] - probabilities[1]).max() <= 1e-5
  pack_a, pack_b = _pack(a), _pack(b)
  assert pack_a.keys() == pack_b.keys()
  worst = max(float(np.abs(pack_a[k] - pack_b[k]).max()) for k in pack_a)
  identical = all(pack_a[k].tobytes() == pack_b[k].tobytes() for k in pack_a)
  print(f"\nrepeat run: bit-identical weights {identical}, max diff {worst}")
  assert worst <= 1e-6


def _trained_weights(checkpoint):
  """The pack-keyed trained variables stored in a run's checkpoint."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from harness import minilm  # pylint: disable=g-import-not-at-top
  from keras_adapters import adapter_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.classifier import build_classifier  # pylint: disable=g-import-not-at-top
  model, encoder = build_classifier(minilm()[0], 2, "adapter", 64)
  tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
  ids = set(map(id, encoder.weights))
  return {adapter_pack._key(v, ids): v.numpy()  # pylint: disable=protected-access
          for v in model.trainable_variables}


def test_killed_run_resumes_to_the_same_result(runs):
  root, futures = runs
  killed_rc, at_kill, delay, kept, resumed, killed_err = (
      futures["resume"].result())
  context = f"killed {delay:.2f}s after the first checkpoint; {at_kill}"
  assert killed_rc == -signal.SIGKILL, (context, killed_err[-2000:])
  # Killed mid-training: no result yet, and nothing that passes for one.
  assert not [f for f in at_kill if not f.startswith(("checkpoints/",
                                                      "logs/"))], context
  _checked(resumed)
  step = int(re.search(r"Resuming from \S+ckpt-(\d+) at step (\d+)",
                       resumed.stdout).group(1))
  assert SAVE_EVERY <= step < TOTAL_STEPS, context
  _checked(futures["reference_deterministic"].result())
  a, b = root / "reference_deterministic", root / "resume"
  # The same final dev metrics (and global_step) ...
  assert _results(a) == _results(b), context
  # ... and the same weights: the checkpoint holds the weights, the Adam
  # moments, the step and the dropout generators, and the data order
  # depends on the seed only. Allowed: a few float32 ulp, as between two
  # unbroken runs (test_same_seed_same_results).
  pack_a, pack_b = _pack(a), _pack(b)
  assert pack_a.keys() == pack_b.keys()
  worst = max(float(np.abs(pack_a[k] - pack_b[k]).max()) for k in pack_a)
  identical = all(pack_a[k].tobytes() == pack_b[k].tobytes() for k in pack_a)
  print(f"\nresumed at step {step} ({context}): bit-identical {identical}, "
        f"max |resumed - uninterrupted| = {worst:.2e}")
  assert worst <= 1e-6, (worst, context)
  probabilities = [np.loadtxt(d / "test_results.tsv") for d in (a, b)]
  assert np.abs(probabilities[0] - probabilities[1]).max() <= 1e-5
  # Not vacuous: the resumed run trained on from its checkpoint (it moved
  # away from it) and ended nearer the unbroken run than that checkpoint.
  start = _trained_weights(str(kept / f"ckpt-{step}"))
  l2 = lambda x, y: np.sqrt(sum(np.sum((x[k] - y[k]) ** 2) for k in start))
  moved, deviation = l2(pack_b, start), l2(pack_b, pack_a)
  print(f"L2: moved {moved:.3e} since ckpt-{step}, deviation {deviation:.3e}")
  assert deviation < moved, (deviation, moved, context)


_SAVER = r"""
import sys
import numpy as np
import tensorflow as tf
import tf_keras
from keras_adapters import adapter_pack
out, version = sys.argv[1], int(sys.argv[2])
backbone = tf_keras.layers.Dense(64, trainable=False)
model = tf_keras.Sequential([tf_keras.Input((64,)), backbone,
                             tf_keras.layers.Dense(1 << 16)])  # 16 MB
manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                     out + "/checkpoints", max_to_keep=2)
while True:  # every save holds one version number in every trained weight
  for v in model.trainable_variables:
    v.assign(tf.fill(v.shape, float(version)))
  manager.save(checkpoint_number=version)
  adapter_pack.save_adapter_pack(out + "/adapter_pack.npz", model, backbone,
                                 dict(version=version))
  print(version, flush=True)
  version += 1
"""


def _saver_model():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  backbone = tf_keras.layers.Dense(64, trainable=False)
  model = tf_keras.Sequential([tf_keras.Input((64,)), backbone,
                               tf_keras.layers.Dense(1 << 16)])
  return tf, model


def _temps(directory):
  while True:
    try:
      return [p for p in directory.rglob("*")
              if p.name.endswith(".tmp") or "_temp" in p.name]
    except FileNotFoundError:  # a temp vanished mid-walk (a live saver)
      continue


def test_kill_during_saves_never_leaves_a_loadable_partial_file(tmp_path):
  """SIGKILLs a process that saves checkpoints and adapter packs in a loop,
  each kill aimed at a random write, until three kills have landed mid-write
  (a checkpoint write and a pack write among them). After each, the pack and
  the checkpoint the `checkpoint` file names load, and hold one complete
  version; partial writes are only hidden temp files."""
  from keras_adapters import adapter_pack  # pylint: disable=g-import-not-at-top
  tf, model = _saver_model()
  rng, version, mid_write, kills, hit = random.Random(), 0, 0, 0, set()
  while mid_write < 3 or len(hit) < 2:  # at least one in each kind of write
    assert kills < 12, "kills keep missing the saves"
    env = dict(subprocess_env(), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(tmp_path), str(version)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    first = proc.stdout.readline()  # one complete save of each
    assert first.strip() == str(version), proc.stderr.read()[-2000:]
    time.sleep(rng.uniform(0, 0.5))
    # Aim, at the checkpoint and the pack in turn: wait (up to 5 s) for
    # that write's temp file, then kill within ~3 ms. Purely random kills
    # missed every write in 12 tries on CI's fast disk.
    aim = ("_temp", ".tmp")[kills % 2]
    deadline = time.monotonic() + 5
    while (not any(aim in p.name for p in _temps(tmp_path))
           and time.monotonic() < deadline):
      pass
    time.sleep(rng.uniform(0, 0.003))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    kills += 1
    temps = _temps(tmp_path)
    mid_write += bool(temps)
    hit.update(kind for kind in ("_temp", ".tmp")
               if any(kind in p.name for p in temps))
    config, arrays = adapter_pack.read_pack(str(tmp_path / "adapter_pack.npz"))
    assert {float(a.flat[0]) for a in arrays.values()} == {config["version"]}
    assert all((a == config["version"]).all() for a in arrays.values())
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    tf.train.Checkpoint(model=model).read(
        latest).assert_existing_objects_matched()
    saved = int(latest.rsplit("-", 1)[1])
    assert all((v.numpy() == saved).all() for v in model.trainable_variables)
    assert all(not p.name.startswith("adapter_pack") for p in temps)
    for p in temps:  # as a fresh run would find them
      shutil.rmtree(p) if p.is_dir() else p.unlink()
    version = max(saved, config["version"]) + 1
  print(f"\n{kills} kills, {mid_write} mid-write {sorted(hit)}; last pack "
        f"version {config['version']}, last checkpoint ckpt-{saved}")
