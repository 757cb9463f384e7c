"""Shared-trunk serving: N tasks of the same texts, fan-out vs routing.

In one run, on the real all-MiniLM-L6-v2: for each trunk depth k (packs
with `leave_out` = blocks 0..k-1), 8 single-sentence adapter packs
(untrained but perturbed: speed does not depend on training) go into one
multi-task SavedModel, reloaded. For N = 1, 3, 8 tasks asked of the same
batch of real SST-2 dev sentences, it times
* fan-out: `serving_fanout(tasks=[N names], text_a=[B texts])`, the trunk
  once per text;
* routing: `serving_default` with N x B rows (each text once per task), the
  trunk once per row;
interleaved, in rounds (median seconds), and checks that both give the same
probabilities. Throughput counts answers (text, task pairs) per second.

  python -m benchmarks.serving_fanout --out benchmarks/results/serving_fanout.jsonl
  python -m benchmarks.serving_fanout --table benchmarks/results/serving_fanout.jsonl
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops)

from benchmarks.export_size_throughput import dev_texts
from keras_adapters import AdapterTextClassifier
from keras_adapters.loaders.pretrained import load_pretrained
from keras_adapters.serving import export_multitask


def make_packs(pretrained, root, depth, num_tasks, seq):
  """`num_tasks` packs leaving out blocks 0..depth-1, weights perturbed."""
  packs = []
  for i in range(num_tasks):
    clf = AdapterTextClassifier.from_pretrained(
        pretrained, seq, labels=["neg", "pos"], seed=i, name=f"task{i}",
        leave_out=list(range(depth)), adapter_init_scale=0.05)
    for v in clf.trainable_variables:
      v.assign(v + tf.random.normal(v.shape, stddev=0.02, seed=i))
    clf.task_config["is_pair"] = False
    packs.append(clf.save_adapters(os.path.join(root, f"task{i}.npz")))
  return packs


def timed(fn, kwargs):
  start = time.perf_counter()
  out = fn(**kwargs)
  return time.perf_counter() - start, out


def measure(model, texts, num_tasks, rounds):
  """Median seconds of fan-out and routing for the first `num_tasks`
  tasks, and the max |difference| of their probabilities."""
  names = [f"task{i}" for i in range(num_tasks)]
  fanout_kw = dict(tasks=tf.constant(names), text_a=tf.constant(texts),
                   text_b=tf.constant([""] * len(texts)))
  routed_kw = dict(task=tf.constant([n for n in names for _ in texts]),
                   text_a=tf.constant(texts * num_tasks),
                   text_b=tf.constant([""] * len(texts) * num_tasks))
  fanout, routed = (model.signatures["serving_fanout"],
                    model.signatures["serving_default"])
  _, a = timed(fanout, fanout_kw)  # first calls: tracing, warm-up
  _, b = timed(routed, routed_kw)
  per_task = np.transpose(a["probabilities"].numpy(), (1, 0, 2)).reshape(
      -1, a["probabilities"].shape[-1])
  diff = float(np.abs(per_task - b["probabilities"].numpy()).max())
  seconds = {"fanout": [], "routed": []}
  for _ in range(rounds):
    seconds["fanout"].append(timed(fanout, fanout_kw)[0])
    seconds["routed"].append(timed(routed, routed_kw)[0])
  return {k: statistics.median(v) for k, v in seconds.items()}, diff


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--depths", default="2,3", help="trunk depths k")
  parser.add_argument("--tasks", default="1,3,8", help="tasks per request")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--max_seq_length", type=int, default=64)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--out", default=None, help="results .jsonl to append")
  parser.add_argument("--table", default=None, help="print the newest run "
                      "of this results file as a markdown table, and stop")
  return parser.parse_args()


def print_table(path):
  with open(path) as f:
    run = [json.loads(line) for line in f if line.strip()][-1]
  print(f"{run['cpu']}, {run['cpus']} cores; batch of {run['rows'][0]['texts']}"
        f" SST-2 dev sentences, max_seq_length {run['max_seq_length']}, "
        f"median of {run['rounds']} rounds ({run['finished'][:10]})\n")
  print("| k | tasks | fan-out answers/s | routed answers/s | speed-up | "
        "max abs diff |")
  print("|---|---|---|---|---|---|")
  for r in run["rows"]:
    print(f"| {r['trunk_depth']} | {r['tasks']} | "
          f"{r['answers_per_second']['fanout']} | "
          f"{r['answers_per_second']['routed']} | {r['speedup']:.2f}x | "
          f"{r['max_abs_diff']:.0e} |")


def main():
  args = parse_args()
  if args.table:
    print_table(args.table)
    return
  start = time.time()
  pretrained = load_pretrained()
  texts = dev_texts("sst-2", args.batch_size)[0]
  task_counts = [int(n) for n in args.tasks.split(",")]
  rows = []
  for depth in [int(k) for k in args.depths.split(",")]:
    with tempfile.TemporaryDirectory() as root:
      packs = make_packs(pretrained, root, depth, max(task_counts),
                         args.max_seq_length)
      path = export_multitask(packs, os.path.join(root, "mt", "1"),
                              pretrained, args.max_seq_length)
      model = tf.saved_model.load(path)
      for n in task_counts:
        seconds, diff = measure(model, texts, n, args.rounds)
        answers = n * len(texts)
        row = dict(trunk_depth=depth, tasks=n, texts=len(texts),
                   median_seconds=seconds,
                   answers_per_second={k: round(answers / v, 1)
                                       for k, v in seconds.items()},
                   speedup=round(seconds["routed"] / seconds["fanout"], 3),
                   max_abs_diff=diff)
        print(json.dumps(row))
        rows.append(row)
  summary = dict(benchmark="serving_fanout", rows=rows,
                 max_seq_length=args.max_seq_length, rounds=args.rounds,
                 wall_seconds=round(time.time() - start),
                 command="python -m benchmarks.serving_fanout " + " ".join(
                     f"--{k}={v}" for k, v in vars(args).items()
                     if k != "out"),
                 tensorflow=tf.__version__, cpus=os.cpu_count(),
                 machine=platform.machine(), cpu=_cpu_name(),
                 finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
  if args.out:
    with open(args.out, "a") as f:
      f.write(json.dumps(summary) + "\n")


def _cpu_name():
  try:
    with open("/proc/cpuinfo") as f:
      return next(l.split(":", 1)[1].strip() for l in f
                  if l.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor()


if __name__ == "__main__":
  main()
