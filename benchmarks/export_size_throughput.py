"""SavedModel size and serving throughput: one backbone + N adapter tasks.

In one run (real all-MiniLM-L6-v2 backbone by default):
* sizes on disk of: a single-task adapter export, multi-task exports with
  1 and N tasks, and one fully fine-tuned export (x N for N separate
  fully fine-tuned models);
* throughput (examples/s, token-id signature and raw-text signature) of a
  mixed-task batch vs a single-task batch of the same size through the
  N-task SavedModel, and of the single-task SavedModel;
* the max |difference| of the mixed batch's probabilities vs each example's
  single-task SavedModel (the equality the multi-task export promises).

Packs: --packs=a.npz,b.npz,... (e.g. run_classifier.py output_dirs'
adapter_pack.npz); default: N distinct untrained-but-perturbed packs for
SST-2 / MRPC / STS-B (sizes and speed do not depend on training).

  python -m benchmarks.export_size_throughput \
      --out=benchmarks/results/export_size_throughput.json
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops)
import tf_keras

from keras_adapters.saving import adapter_pack
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.data import glue
from keras_adapters.loaders.pretrained import load_pretrained
from keras_adapters.serving import export_classifier, export_multitask
from keras_adapters.serving import export_pack

GLUE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "shared", "data", "glue_data")
DEFAULT_TASKS = {"sst-2": (["0", "1"], False), "mrpc": (["0", "1"], False),
                 "sts-b": (None, True)}


def du(path):
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def make_packs(pre, root, adapter_size, seq):
  packs = []
  for i, (task, (labels, reg)) in enumerate(DEFAULT_TASKS.items()):
    tf_keras.utils.set_random_seed(i)
    model, encoder = build_classifier(pre.encoder, 1 if reg else len(labels),
                                      "adapter", adapter_size,
                                      adapter_init_scale=0.05)
    for v in model.trainable_variables:
      v.assign(v + tf.random.normal(v.shape, stddev=0.02))
    path = os.path.join(root, f"{task}.npz")
    adapter_pack.save_adapter_pack(path, model, encoder, dict(
        task_name=task, labels=labels, is_regression=reg,
        fine_tune_mode="adapter", adapter_size=adapter_size, top_k_layers=1,
        max_seq_length=seq, model=pre.description))
    packs.append(path)
  return packs


def dev_texts(task, n):
  folder = {"sst-2": "SST-2", "mrpc": "MRPC", "sts-b": "STS-B", "cola": "CoLA",
            "rte": "RTE"}.get(task, task.upper())
  examples = glue.get_processor(task).get_examples(
      os.path.join(GLUE, folder), "dev")[:n]
  return [e.text_a for e in examples], [e.text_b or "" for e in examples]


def throughput(fn, kwargs, batch, reps):
  fn(**kwargs)  # warm-up / first-call tracing
  start = time.perf_counter()
  for _ in range(reps):
    fn(**kwargs)
  return batch * reps / (time.perf_counter() - start)


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--packs", default=None)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--max_seq_length", type=int, default=128)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--out", default="benchmarks/results/"
                      "export_size_throughput.json")
  return parser.parse_args()


def export_all(packs, pre, root, seq):
  """Exports under `root`: "single" (the first pack), "single_<i>" (each
  pack, for the equality check), "mt1"/"mtN" (multi-task with the first /
  all packs) and "full" (a fully fine-tuned pair classifier); their
  directories."""
  d = {k: os.path.join(root, k, "1") for k in
       ("single", "mt1", "mtN", "full")}
  export_pack(packs[0], d["single"], pre, seq)
  for i, p in enumerate(packs):
    d[f"single_{i}"] = os.path.join(root, f"single_{i}", "1")
    if i:
      export_pack(p, d[f"single_{i}"], pre, seq)
  d["single_0"] = d["single"]
  export_multitask(packs[:1], d["mt1"], pre, seq)
  export_multitask(packs, d["mtN"], pre, seq)
  full, _ = build_classifier(pre.encoder, 2, "full")
  export_classifier(d["full"], full, pre.encoder, vocab_file=pre.vocab_file,
                    do_lower_case=pre.do_lower_case, labels=["0", "1"],
                    is_regression=False, is_pair=True, max_seq_length=seq)
  return d


def request_batches(tasks, batch):
  """(a batch of real dev examples interleaving the tasks, a batch of the
  first task's only), each as task / text_a / text_b lists."""
  n = len(tasks)
  per_task = {t: dev_texts(t, batch) for t in tasks}
  mixed = dict(task=[], text_a=[], text_b=[])
  for k in range(batch):
    t = tasks[k % n]
    a, b = per_task[t]
    mixed["task"].append(t)
    mixed["text_a"].append(a[k // n])
    mixed["text_b"].append(b[k // n])
  first = tasks[0]
  single_batch = dict(task=[first] * batch, text_a=per_task[first][0][:batch],
                      text_b=per_task[first][1][:batch])
  return mixed, single_batch


def text_kwargs(model, batch):
  """The text signature's inputs for `batch` (text_b only for pairs)."""
  kw = dict(text_a=tf.constant(batch["text_a"]))
  if "text_b" in model.signatures[
      "serving_default"].structured_input_signature[1]:
    kw["text_b"] = tf.constant(batch["text_b"])
  return kw


def max_diff_vs_single_task(out, mixed, tasks, d):
  """max |p - q| between the multi-task export's probabilities `out` on
  `mixed` and each example's single-task export."""
  max_diff = 0.0
  for i, task in enumerate(tasks):
    model = tf.saved_model.load(d[f"single_{i}"])
    rows = [k for k, t in enumerate(mixed["task"]) if t == task]
    kw = text_kwargs(model, {k: [mixed[k][r] for r in rows]
                             for k in ("text_a", "text_b")})
    ref = model.signatures["serving_default"](**kw)["probabilities"].numpy()
    got = tf.gather(out["probabilities"], rows).numpy()[:, :ref.shape[1]]
    max_diff = max(max_diff, float(np.abs(got - ref).max()))
  return max_diff


def throughputs(mt, single_model, mixed, single_batch, pre, seq, reps):
  """Examples/s of each signature on the mixed and the one-task batch."""
  from keras_adapters import AdapterTextPreprocessor  # pylint: disable=g-import-not-at-top
  batch = len(mixed["task"])
  const = lambda x: {k: tf.constant(v) for k, v in x.items()}
  text_sig, ids_sig = mt.signatures["serving_default"], mt.signatures[
      "serving_ids"]
  # Token ids as the text signature makes them, from the library's packer.
  pair = AdapterTextPreprocessor(pre.vocab_file, pre.do_lower_case, seq)
  ids_batch = pair(tf.constant(mixed["text_a"]), tf.constant(mixed["text_b"]))
  return {
      "multitask_text_mixed_batch": throughput(text_sig, const(mixed), batch,
                                               reps),
      "multitask_text_single_task_batch": throughput(
          text_sig, const(single_batch), batch, reps),
      "multitask_ids_mixed_batch": throughput(
          ids_sig, dict(task=tf.constant(mixed["task"]), **ids_batch), batch,
          reps),
      "multitask_ids_single_task_batch": throughput(
          ids_sig, dict(task=tf.constant(single_batch["task"]), **ids_batch),
          batch, reps),
      "single_task_model_text_batch": throughput(
          single_model.signatures["serving_default"],
          text_kwargs(single_model, single_batch), batch, reps),
      "single_task_model_ids_batch": throughput(
          single_model.signatures["serving_ids"], dict(ids_batch), batch,
          reps),
  }


def size_summary(d, packs):
  sizes = {k: du(v) for k, v in d.items() if not k.startswith("single_")}
  n = len(packs)
  return dict(
      size_bytes=dict(
          single_task_adapter_export=sizes["single"],
          multitask_1_task=sizes["mt1"], multitask_n_tasks=sizes["mtN"],
          one_full_finetuned_export=sizes["full"],
          n_separate_full_finetuned=n * sizes["full"],
          n_separate_single_task_adapter_exports=n * sizes["single"],
          adapter_packs=[os.path.getsize(p) for p in packs]),
      size_ratio=dict(
          multitask_n_vs_n_full=sizes["mtN"] / (n * sizes["full"]),
          multitask_n_in_backbones=sizes["mtN"] / sizes["full"],
          n_full_in_backbones=float(n),
          added_bytes_per_task=(sizes["mtN"] - sizes["mt1"]) / max(1, n - 1)))


def main():
  args = parse_args()
  seq, batch = args.max_seq_length, args.batch_size
  root = tempfile.mkdtemp(prefix="export_bench_")
  pre = load_pretrained()
  packs = (args.packs.split(",") if args.packs
           else make_packs(pre, root, args.adapter_size, seq))
  configs = [adapter_pack.read_pack(p)[0] for p in packs]
  tasks = [c["task_name"] for c in configs]
  t0 = time.time()
  d = export_all(packs, pre, root, seq)
  export_seconds = time.time() - t0
  mixed, single_batch = request_batches(tasks, batch)
  mt = tf.saved_model.load(d["mtN"])
  out = mt.signatures["serving_default"](
      **{k: tf.constant(v) for k, v in mixed.items()})
  max_diff = max_diff_vs_single_task(out, mixed, tasks, d)
  speed = throughputs(mt, tf.saved_model.load(d["single"]), mixed,
                      single_batch, pre, seq, args.reps)
  result = dict(
      backbone=pre.description, tasks=tasks, num_tasks=len(packs),
      adapter_size=configs[0].get("adapter_size"), max_seq_length=seq,
      batch_size=batch, reps=args.reps, **size_summary(d, packs),
      examples_per_second=speed,
      mixed_vs_single_task_throughput=(speed["multitask_ids_mixed_batch"] /
                                       speed["multitask_ids_single_task_batch"]),
      max_abs_diff_mixed_vs_single_task_models=max_diff,
      export_seconds=round(export_seconds, 1),
      machine=dict(cpus=os.cpu_count(), machine=platform.machine(),
                   tensorflow=tf.__version__,
                   note="CPU shared with other jobs; throughput is indicative"),
      command=" ".join(["python -m benchmarks.export_size_throughput"] +
                       sys.argv[1:]))
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  os.chmod(args.out, 0o644)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
