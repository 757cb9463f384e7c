"""run_classifier.py under tf.distribute on this CPU-only machine.

One real MRPC run (MiniLM, 160 train rows, 4 steps of batch 16, seq 32) on
one device, with MirroredStrategy over 2 logical CPUs, and with
MultiWorkerMirroredStrategy over 2 worker processes on loopback, all four
processes started together (160 CPU-seconds in all). The dev metric must
agree with the single-device run. It cannot be bit-identical: every replica
draws its own dropout masks and the gradient all-reduce sums in another
order, so the tolerance is 2 of the 100 dev examples (measured: identical
accuracy and F1; test probabilities within 0.015).
"""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess

import numpy as np
import pytest

import harness
from harness import GLUE_DIR
from keras_adapters.config import AdapterConfig

MRPC = GLUE_DIR / "MRPC"
ROWS = dict(train=160, dev=100, test=40)  # real rows, from the top
FLAGS = ["--task_name=MRPC", "--do_train", "--do_eval", "--do_predict",
         "--max_seq_length=32", "--train_batch_size=16",
         "--eval_batch_size=32", "--predict_batch_size=32",
         "--num_train_epochs=0.4"]
STEPS = 4  # 160 // 16 = 10 steps per epoch, x 0.4
TIMEOUT = 1800  # s, a hang guard for all runs together (not a time limit)
METRIC_TOLERANCE = 0.02  # 2 of 100 dev examples
PORT_ATTEMPTS = 3  # a port the OS gave us may be taken before a worker binds


def _os_assigned_ports(n):
  """n ports the OS assigns (bind to port 0). They are free now; a worker
  binding one later can still lose it to another process, hence the
  retries in `runs`."""
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _start(extra_flags, output_dir, log, tf_config=None):
  env = harness.driver_env()
  env.pop("TF_CONFIG", None)
  if tf_config:
    env["TF_CONFIG"] = json.dumps(tf_config)
  with open(log, "w") as out:
    return harness.start_driver(
        "run_classifier.py", [*FLAGS, *extra_flags,
                              f"--output_dir={output_dir}"],
        env=env, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own group: killed with its children


def _stop_all(procs):
  for proc in procs:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
  for proc in procs:
    proc.wait()


def _wait_all(procs, timeout):
  """Waits until every process exited 0, or one failed (the other worker
  would wait for it forever), or `timeout` (a hang guard) passed."""
  def wait(proc):
    if proc.wait() != 0:
      raise RuntimeError(proc.returncode)
  with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
    concurrent.futures.wait([pool.submit(wait, p) for p in procs],
                            timeout=timeout,
                            return_when=concurrent.futures.FIRST_EXCEPTION)
    _stop_all(procs)  # ends the waits too


def _port_lost(log):
  return any(words in log.lower() for words in (
      "address already in use", "failed to add port", "failed to bind",
      "could not start grpc server"))


def _run_plan(tmp, data, attempt):
  """Starts the four runs together; {name: (returncode, output_dir, log)}."""
  cluster = {"worker": [f"127.0.0.1:{p}" for p in _os_assigned_ports(2)]}
  plan = {
      "single": (["--distribution_strategy=off"], None),
      "mirrored": (["--num_cpu_devices=2"], None),  # auto -> mirrored
      "worker0": ([], {"cluster": cluster,
                       "task": {"type": "worker", "index": 0}}),
      "worker1": ([], {"cluster": cluster,
                       "task": {"type": "worker", "index": 1}}),
  }
  if attempt:  # the single-device and mirrored runs already succeeded
    plan = {k: v for k, v in plan.items() if k.startswith("worker")}
  out = {name: tmp / (f"multi_worker_{attempt}" if name.startswith("worker")
                      else name) for name in plan}
  logs = {name: tmp / f"{name}_{attempt}.log" for name in plan}
  procs = {name: _start(flags + [f"--data_dir={data}"], out[name],
                        logs[name], tf_config)
           for name, (flags, tf_config) in plan.items()}
  _wait_all(list(procs.values()), TIMEOUT)
  return {name: (procs[name].returncode, out[name], logs[name].read_text())
          for name in plan}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """{name: (output_dir, log text)} of the single-device, mirrored and
  multi-worker (chief's output_dir) runs. The multi-worker pair is re-run
  on new ports if a worker lost its port to another process."""
  tmp = tmp_path_factory.mktemp("distributed")
  data = harness.glue_subset(tmp / "mrpc", ROWS)
  done = {}
  for attempt in range(PORT_ATTEMPTS):
    done.update(_run_plan(tmp, data, attempt))
    workers = [done[w] for w in ("worker0", "worker1")]
    if not any(rc != 0 and _port_lost(log) for rc, _, log in workers):
      break
  for name, (returncode, _, log) in done.items():
    assert returncode == 0, f"{name} exit {returncode}:\n" + log[-3000:]
  return {name: (out, log) for name, (_, out, log) in done.items()}


def _results(output_dir):
  lines = (output_dir / "eval_results.txt").read_text().splitlines()
  return {k: float(v) for k, v in (line.split(" = ") for line in lines)}


@pytest.mark.large
def test_each_run_used_the_intended_strategy(runs):
  assert "Distribution: default strategy, 1 replica\n" in runs["single"][1]
  assert "Distribution: MirroredStrategy, 2 replicas" in runs["mirrored"][1]
  for worker in ("worker0", "worker1"):
    assert ("Distribution: MultiWorkerMirroredStrategy, 2 replicas"
            in runs[worker][1])
  for _, log in runs.values():
    assert "Traceback" not in log


@pytest.mark.large
@pytest.mark.parametrize("name", ["mirrored", "worker0"])
def test_dev_metric_matches_the_single_device_run(runs, name):
  single, other = _results(runs["single"][0]), _results(runs[name][0])
  assert single["global_step"] == other["global_step"] == STEPS
  for metric in ("eval_accuracy", "eval_f1"):
    assert abs(single[metric] - other[metric]) <= METRIC_TOLERANCE, (
        metric, single, other)
  for _, log in (runs["single"], runs[name]):
    assert f"Eval results ({ROWS['dev']} dev examples)" in log


@pytest.mark.large
@pytest.mark.parametrize("name", ["mirrored", "worker0"])
def test_predictions_keep_the_example_order(runs, name):
  # Padding rows dropped, nothing lost or duplicated, rows in test-file
  # order: per-row probabilities track the single-device run's (a shift by
  # one row drops the correlation to about 0).
  single = np.loadtxt(runs["single"][0] / "test_results.tsv")[:, 1]
  other = np.loadtxt(runs[name][0] / "test_results.tsv")[:, 1]
  assert single.shape == other.shape == (ROWS["test"],)
  assert np.abs(single - other).max() < 0.05
  assert np.corrcoef(single, other)[0, 1] > 0.8
  assert np.corrcoef(single, np.roll(other, 1))[0, 1] < 0.6


@pytest.mark.large
def test_only_the_chief_wrote_results(runs):
  output_dir, _ = runs["worker0"]
  assert (output_dir / "adapter_pack.npz").is_file()
  assert (output_dir / "MRPC.tsv").is_file()
  assert int(open(output_dir / "checkpoints" / "checkpoint").read().split(
      '"')[1].rsplit("-", 1)[1]) == STEPS
  # worker 1 saved its checkpoints into its own directory and removed it
  assert not [p for p in output_dir.iterdir() if p.name.startswith(".worker")]
  assert "Eval results" not in runs["worker1"][1]
  assert "Saved the trained variables" not in runs["worker1"][1]


# --- The TPU path, as far as it goes without a TPU -----------------------------


def test_auto_strategy_choice(monkeypatch):
  from keras_adapters.training import distribute
  from keras_adapters.errors import UserInputError
  monkeypatch.delenv("TF_CONFIG", raising=False)
  name = distribute.strategy_name
  assert name("auto", True, None, lambda: 1) == "tpu"  # --use_tpu
  assert name("auto", False, "my-tpu", lambda: 1) == "tpu"  # --tpu_name
  assert name("auto", False, None, lambda: 2) == "mirrored"
  assert name("auto", False, None, lambda: 1) == "off"
  assert name("one_device", True, None, lambda: 2) == "one_device"
  monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')

  def must_not_initialize_tf():
    raise AssertionError("counted devices before the multi-worker strategy")
  assert name("auto", False, None, must_not_initialize_tf) == (
      "multi_worker_mirrored")
  with pytest.raises(UserInputError, match="not one of auto, off"):
    name("tpu_pod", False, None, lambda: 1)


def test_bad_cluster_or_batch_is_one_clear_error(monkeypatch):
  from keras_adapters.training import distribute
  from keras_adapters.errors import UserInputError
  monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["h:1"]}}')
  with pytest.raises(UserInputError, match="TF_CONFIG as JSON like"):
    distribute._check_tf_config()  # pylint: disable=protected-access

  class EightReplicas:
    num_replicas_in_sync = 8
  distribute.check_batch_size(EightReplicas(), "train_batch_size", 32)
  with pytest.raises(UserInputError, match="--train_batch_size=36 is the "
                     "global batch and must split evenly over 8 replicas"):
    distribute.check_batch_size(EightReplicas(), "train_batch_size", 36)


def test_tpu_flags_reach_the_tpu_resolver(monkeypatch):
  from keras_adapters.training import distribute
  calls = []
  monkeypatch.setattr(distribute, "_tpu_strategy",
                      lambda *args: calls.append(args) or "TPUStrategy")
  assert distribute.get_strategy(
      "auto", use_tpu=True, tpu_name="my-tpu", tpu_zone="us-central1-b",
      gcp_project="my-project") == "TPUStrategy"
  assert calls == [("my-tpu", "us-central1-b", "my-project")]


@pytest.mark.large
def test_unreachable_tpu_is_one_line_and_exit_2(tmp_path):
  """No TPU here: a TPU name (needs GCP credentials), a grpc:// address
  nobody listens on (TF itself would wait forever) and --use_tpu without a
  name each stop at once with one error line; nothing is written."""
  # A port bound (by the OS's choice) but not listening: connections to it
  # are refused for as long as this socket holds it.
  holder = socket.socket()
  holder.bind(("127.0.0.1", 0))
  closed_port = holder.getsockname()[1]
  cases = {
      "name": (["--use_tpu", "--tpu_name=nonexistent"], "nonexistent"),
      "grpc": ([f"--tpu_name=grpc://127.0.0.1:{closed_port}"],
               f"no TPU reachable at grpc://127.0.0.1:{closed_port}"),
      "no_name": (["--distribution_strategy=tpu"], "Please provide a TPU"),
  }
  procs = {name: harness.start_driver(
      "run_classifier.py", ["--task_name=MRPC", "--do_eval",
                            f"--data_dir={MRPC}",
                            f"--output_dir={tmp_path / name}", *flags],
      start_new_session=True) for name, (flags, _) in cases.items()}
  try:  # the timeout only guards against a hang (TF alone would wait)
    results = {name: p.communicate(timeout=900) for name, p in procs.items()}
  finally:
    _stop_all(procs.values())
    holder.close()
  for name, (_, words) in cases.items():
    stderr = results[name][1]
    assert procs[name].returncode == 2, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith("run_classifier.py: error: no TPU reachable")
    assert words in lines[0] and "--tpu_name" in lines[0]
    assert not (tmp_path / name / "eval_results.txt").exists()


@pytest.fixture(scope="module")
def mrpc_train_examples():
  from keras_adapters.data import glue
  return glue.get_processor("mrpc").get_examples(str(MRPC), "train")[:64]


def _is_static(spec):
  import tensorflow as tf
  specs = tf.nest.flatten(spec)
  return all(s.shape.is_fully_defined() and s.dtype in (tf.int32, tf.float32)
             for s in specs)


def test_input_pipeline_has_static_shapes_and_splits_global_batches(
    mrpc_train_examples):
  """What TPUs need (fixed shapes, no int64/strings on the device) and what
  replicas need (each its own slice of every global batch): the driver's
  training batches as host 1 of a 2-host pod with 8 replicas sees them."""
  import tensorflow as tf
  from harness import minilm
  from keras_adapters.training import distribute
  from keras_adapters.data.features import make_dataset
  _, vocab_file, do_lower_case = minilm()

  def global_batches():
    return make_dataset(
        mrpc_train_examples, vocab_file=vocab_file,
        do_lower_case=do_lower_case, max_seq_length=32,
        label_list=["0", "1"], is_regression=False, batch_size=16,
        is_training=True, seed=3, drop_remainder=True, repeat=True)

  context = tf.distribute.InputContext(
      num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=8)
  per_replica = distribute.per_replica_input(global_batches)(context)
  assert _is_static(global_batches().element_spec)
  assert _is_static(per_replica.element_spec)
  assert per_replica.element_spec[1].shape == [2]  # 16 / 8 replicas
  # Host 1 serves replicas 4..7: rows 8..15 of each global batch, in order.
  host_rows = list(per_replica.take(8).as_numpy_iterator())
  for step, (features, labels) in enumerate(
      global_batches().take(2).as_numpy_iterator()):
    mine = host_rows[4 * step:4 * step + 4]
    np.testing.assert_array_equal(
        np.concatenate([f["input_word_ids"] for f, _ in mine]),
        features["input_word_ids"][8:])
    np.testing.assert_array_equal(np.concatenate([y for _, y in mine]),
                                  labels[8:])

  # Eval/predict: 64 examples in full batches of 24 -> 72 rows, 8 padding.
  eval_batches = make_dataset(
      mrpc_train_examples, vocab_file=vocab_file, do_lower_case=do_lower_case,
      max_seq_length=32, label_list=["0", "1"], is_regression=False,
      batch_size=24, is_training=False)
  padded = distribute.padded_batches(eval_batches, 64, 24)
  assert _is_static(padded.element_spec)
  rows = np.concatenate([y for _, y in padded.as_numpy_iterator()])
  assert len(rows) == 72
  np.testing.assert_array_equal(
      rows[:64], np.concatenate([y for _, y in eval_batches]))


def _tiny_encoder():
  # A tiny random BERT: this is about which ops the step compiles to, not
  # about the weights. No dropout, so XLA and TF draw nothing random.
  return harness.tiny_encoder(max_sequence_length=32, dropout_rate=0.0,
                              attention_dropout_rate=0.0, seed=1)


def _inputs(batch=8, length=32):
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 100, [batch, length]).astype(np.int32)
  mask = np.ones_like(ids)
  mask[:, length // 2:] = 0
  return dict(input_word_ids=ids * mask, input_mask=mask,
              input_type_ids=np.zeros_like(ids))


@pytest.mark.large  # XLA compiles a BERT train step twice
@pytest.mark.parametrize("task", ["classifier", "squad"])
def test_train_step_compiles_with_xla(task):
  """The whole train step (forward, backward, AdamW with warmup/decay and
  global-norm clipping) compiles with XLA on CPU, as TPUs require: an op
  without an XLA kernel would raise here. And it computes what TF does."""
  import tf_keras
  from keras_adapters.training import optimizers
  from keras_adapters.models.text_classifier import build_classifier
  from keras_adapters.squad import model as squad_model
  x = _inputs()
  losses, weights = {}, {}
  for jit in (False, True):
    if task == "classifier":
      model, _ = build_classifier(_tiny_encoder(), 2, "adapter", 16,
                                  dropout_rate=0.0)
      y = np.arange(8) % 2
      model.compile(optimizers.create_optimizer(1e-3, 10, 0.1),
                    loss=tf_keras.losses.SparseCategoricalCrossentropy(
                        from_logits=True), jit_compile=jit)
    else:
      model, _ = squad_model.build_span_labeler(
          _tiny_encoder(), AdapterConfig(adapter_size=16))
      y = (np.arange(8) % 16, np.arange(8) % 16 + 1)
      model.compile(optimizers.create_optimizer(1e-3, 10, 0.1),
                    loss=[squad_model.span_loss()] * 2,
                    loss_weights=[0.5, 0.5], jit_compile=jit)
    losses[jit] = [model.train_on_batch(x, y) for _ in range(3)]
    weights[jit] = [w.numpy() for w in model.trainable_weights]
  np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
  assert losses[True][0] != losses[True][-1]  # it trained
  for a, b in zip(weights[True], weights[False]):
    np.testing.assert_allclose(a, b, atol=1e-5)
