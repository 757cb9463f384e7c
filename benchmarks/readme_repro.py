"""Re-runs a README GLUE row (benchmarks/results/glue_core.jsonl) through the
driver or through `AdapterTextClassifier.fit`, and appends the comparison
with the stored metrics to benchmarks/results/glue_core_repro.jsonl.

  python -m benchmarks.readme_repro --name mrpc_adapter --path driver
  python -m benchmarks.readme_repro --name mrpc_adapter --path fit

`--path fit` reads the same TSVs with the same processor and calls
`from_preset(seed=42)` + `fit(x=(texts_a, texts_b), y=labels)` +
`evaluate` with the driver's defaults (batch 32, 3 epochs unless the row's
command says otherwise, max_seq_length 128, adapters m=64 at 1e-3, padding
to max_seq_length unless the command has --dynamic_padding).
"""

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORED = os.path.join(REPO, "benchmarks", "results", "glue_core.jsonl")


def stored_row(name):
  with open(STORED) as f:
    rows = [json.loads(l) for l in f if l.strip()]
  matches = [r for r in rows if r["name"] == name]
  if not matches:
    sys.exit(f"readme_repro.py: error: no row {name!r} in {STORED}")
  return matches[0]


def command_flags(command):
  """{flag: value} of a stored `python run_classifier.py ...` command."""
  flags = {}
  for arg in shlex.split(command)[2:]:
    key, _, value = arg.lstrip("-").partition("=")
    flags[key] = value or True
  return flags


def run_driver(row, output_dir):
  """The row's command, trained from scratch into `output_dir` (an output
  dir with checkpoints would only be evaluated again: refused)."""
  if os.path.exists(output_dir):
    raise SystemExit(f"{output_dir} exists: a re-run there would resume "
                     "from its checkpoints instead of training; remove it "
                     "or give another --output_dir")
  args = shlex.split(row["command"])[1:]
  args = [a for a in args if not a.startswith("--output_dir=")]
  args.append(f"--output_dir={output_dir}")
  subprocess.run([sys.executable] + args, cwd=REPO, check=True)
  metrics = {}
  with open(os.path.join(output_dir, "eval_results.txt")) as f:
    for line in f:
      key, _, value = line.partition(" = ")
      metrics[key.strip()] = float(value)
  return metrics


def run_fit(row):
  """The row's run through the Keras task API, in this process."""
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  flags = command_flags(row["command"])
  processor = glue.get_processor(flags["task_name"])

  def split(name):
    examples = processor.get_examples(os.path.join(REPO, flags["data_dir"]),
                                      name)
    texts_a = [e.text_a for e in examples]
    x = (texts_a, [e.text_b for e in examples]) if processor.is_pair else (
        texts_a)
    return x, [e.label for e in examples]

  clf = AdapterTextClassifier.from_preset(
      "all-MiniLM-L6-v2", seed=int(flags.get("seed", 42)),
      task_name=flags["task_name"],
      max_seq_length=int(flags.get("max_seq_length", 128)))
  clf.fit(*split("train"), batch_size=32,
          epochs=int(float(flags.get("num_train_epochs", 3))),
          dynamic_padding=bool(flags.get("dynamic_padding")))
  metrics = {f"eval_{k}": v for k, v in clf.evaluate_metrics(
      *split("dev"), dynamic_padding=False).items()}
  metrics["global_step"] = float(clf.optimizer.iterations.numpy())
  return metrics


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--name", required=True, help="row of glue_core.jsonl")
  parser.add_argument("--path", choices=("driver", "fit"), required=True)
  parser.add_argument("--output_dir", default=None,
                      help="driver runs: where to train (default runs/repro/NAME)")
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "glue_core_repro.jsonl"))
  parser.add_argument("--note", default="")
  args = parser.parse_args()
  row = stored_row(args.name)
  start = time.time()
  if args.path == "driver":
    output_dir = args.output_dir
    if output_dir is None:  # the default place is this script's: cleared
      output_dir = os.path.join(REPO, "runs", "repro", args.name)
      shutil.rmtree(output_dir, ignore_errors=True)
    metrics = run_driver(row, output_dir)
  else:
    metrics = run_fit(row)
  rerun = {k: round(v, 6) for k, v in sorted(metrics.items())}
  stored = {k: row["metrics"][k] for k in rerun if k in row["metrics"]}
  line = dict(name=args.name, path=args.path,
              finished=datetime.datetime.now().isoformat(timespec="minutes"),
              stored=stored, rerun=rerun,
              equal=all(rerun[k] == v for k, v in stored.items()),
              wall_seconds=round(time.time() - start),
              command=row["command"], note=args.note)
  with open(args.results, "a") as f:
    f.write(json.dumps(line) + "\n")
  print(json.dumps(line))


if __name__ == "__main__":
  main()
