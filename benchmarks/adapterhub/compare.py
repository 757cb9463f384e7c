"""keras_adapters vs AdapterHub, side by side, in one run (issue #4.2).

For each task, trains in turn (the order alternating from task to task):
ours (run_classifier.py in .venv) and AdapterHub's Houlsby adapters
(hf_train.py in .venv-adapterhub; variants houlsby and houlsby_gelu_ln),
with the same MiniLM weights, data files, max_seq_length, batch size,
epochs, learning rate, adapter size and seed. Reports the dev score, the
steady-state training throughput (tokens/s over the epochs after the first,
which holds tracing/compilation; all epochs if there is one) and the peak
RSS of each process, appends one JSON line per run to the results file and
prints the table. Needs only the standard library: run it with either venv.

Usage (from the repo root; setup: bash benchmarks/adapterhub/setup.sh):
  .venv-adapterhub/bin/python benchmarks/adapterhub/compare.py --tasks MRPC,RTE
  .venv-adapterhub/bin/python benchmarks/adapterhub/compare.py --table_only
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCORE_KEYS = {"MRPC": ("accuracy", "f1"), "CoLA": ("matthews_corr",),
              "STS-B": ("spearman",)}


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", default="MRPC,RTE")
  parser.add_argument("--variants", default="houlsby,houlsby_gelu_ln")
  parser.add_argument("--data_dir", default="../shared/data/glue_data")
  parser.add_argument("--max_seq_length", type=int, default=128)
  parser.add_argument("--train_batch_size", type=int, default=32)
  parser.add_argument("--num_train_epochs", type=float, default=3.0)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--seed", type=int, default=42)
  parser.add_argument("--ours_python", default=".venv/bin/python")
  parser.add_argument("--theirs_python", default=".venv-adapterhub/bin/python")
  parser.add_argument("--out", default="runs/adapterhub")
  parser.add_argument("--results",
                      default="benchmarks/results/adapterhub.jsonl")
  parser.add_argument("--table_only", action="store_true",
                      help="print the table of the newest run of each task and "
                      "variant in the results file")
  return parser.parse_args()


def run(command, log_path):
  """Runs `command`; returns (exit code, seconds, peak RSS in MB)."""
  start = time.time()
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=REPO, stdout=log,
                               stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
  return (os.waitstatus_to_exitcode(status), time.time() - start,
          round(usage.ru_maxrss / 1024))


def steady_tokens_per_second(epoch_seconds, epoch_steps, tokens_per_step):
  if len(epoch_seconds) > 1:
    epoch_seconds, epoch_steps = epoch_seconds[1:], epoch_steps[1:]
  return tokens_per_step * sum(epoch_steps) / max(sum(epoch_seconds), 1e-9)


def ours(task, args, common):
  output_dir = os.path.join(args.out, f"{task.lower()}_ours")
  shutil.rmtree(output_dir, ignore_errors=True)  # time a fresh run
  flags = (f"--task_name={task} --do_train --do_eval "
           f"--data_dir={args.data_dir}/{task} --output_dir={output_dir} "
           f"--max_seq_length={args.max_seq_length} "
           f"--train_batch_size={args.train_batch_size} "
           f"--num_train_epochs={args.num_train_epochs} "
           f"--learning_rate={args.learning_rate} "
           f"--adapter_size={args.adapter_size} --seed={args.seed}")
  code, seconds, rss = run([args.ours_python, "run_classifier.py"] +
                           flags.split(), output_dir + ".log")
  if code:
    return dict(common, library="keras_adapters", error=f"exit {code}, see "
                f"{output_dir}.log")
  log = open(output_dir + ".log", errors="replace").read()
  with open(os.path.join(output_dir, "eval_results.txt")) as f:
    values = dict(line.strip().split(" = ") for line in f)
  steps = int(values.pop("global_step"))
  # Keras prints one "<done>/<steps per epoch> - <N>s" line per epoch.
  epochs = [(int(m[0]), int(m[1])) for m in
            re.findall(r"^\s*\d+/(\d+) - (\d+)s - ", log, re.M)]
  per_epoch = epochs[0][0] if epochs else steps
  epoch_steps = [min(per_epoch, steps - i * per_epoch)
                 for i in range(len(epochs))]
  epoch_seconds = [float(s) for _, s in epochs]
  trained = re.search(r"trained per task ([\d,]+)", log)
  tokens = args.train_batch_size * args.max_seq_length
  return dict(
      common, library="keras_adapters", variant="adapter (paper)",
      metrics={k[5:]: float(v) for k, v in values.items()}, steps=steps,
      epoch_seconds=epoch_seconds, epoch_steps=epoch_steps,
      tokens_per_second=round(steady_tokens_per_second(
          epoch_seconds, epoch_steps, tokens), 1),
      trained_params=int(trained[1].replace(",", "")) if trained else None,
      peak_rss_mb=rss, wall_seconds=round(seconds),
      command="python run_classifier.py " + flags)


def theirs(task, variant, args, common):
  os.makedirs(args.out, exist_ok=True)
  log_path = os.path.join(args.out, f"{task.lower()}_{variant}.log")
  flags = (f"--task_name={task} --data_dir={args.data_dir}/{task} "
           f"--max_seq_length={args.max_seq_length} "
           f"--train_batch_size={args.train_batch_size} "
           f"--num_train_epochs={args.num_train_epochs} "
           f"--learning_rate={args.learning_rate} "
           f"--adapter_size={args.adapter_size} --seed={args.seed} "
           f"--variant={variant}")
  code, seconds, rss = run([args.theirs_python,
                            "benchmarks/adapterhub/hf_train.py"] +
                           flags.split(), log_path)
  if code:
    return dict(common, library="adapters", variant=variant,
                error=f"exit {code}, see {log_path}")
  with open(log_path) as f:
    report = json.loads([l for l in f if l.startswith("{")][-1])
  return dict(
      common, library=f"adapters {report['adapters']} (torch "
      f"{report['torch']})", variant=variant, metrics=report["metrics"],
      steps=report["steps"], epoch_seconds=report["epoch_seconds"],
      epoch_steps=report["epoch_steps"],
      tokens_per_second=round(steady_tokens_per_second(
          report["epoch_seconds"], report["epoch_steps"],
          report["tokens_per_step"]), 1),
      trained_params=report["trained_params"], peak_rss_mb=rss,
      wall_seconds=round(seconds),
      command="python benchmarks/adapterhub/hf_train.py " + flags)


def score(row):
  keys = SCORE_KEYS.get(row["task"], ("accuracy",))
  return sum(row["metrics"][k] for k in keys) / len(keys)


def table(rows):
  lines = ["| task | library | variant | dev score | trained params | train "
           "tokens/s | peak RSS (MB) | wall (min) |", "|---|" * 1 + "---|" * 7]
  for row in rows:
    if "error" in row:
      lines.append(f"| {row['task']} | {row['library']} | "
                   f"{row.get('variant', '')} | {row['error']} | | | | |")
      continue
    metrics = ", ".join(f"{k} {100 * v:.1f}" for k, v in
                        sorted(row["metrics"].items()) if k != "mse")
    lines.append(f"| {row['task']} | {row['library']} | {row['variant']} | "
                 f"{metrics} | {row['trained_params']:,} | "
                 f"{row['tokens_per_second']:,.0f} | {row['peak_rss_mb']:,} "
                 f"| {row['wall_seconds'] / 60:.1f} |")
  lines.append("")
  for task in dict.fromkeys(r["task"] for r in rows):
    mine = [r for r in rows if r["task"] == task and
            r["library"] == "keras_adapters" and "error" not in r]
    for other in (r for r in rows if r["task"] == task and
                  r["library"] != "keras_adapters" and "error" not in r):
      if mine:
        lines.append(
            f"{task}, ours vs {other['variant']}: score "
            f"{100 * (score(mine[0]) - score(other)):+.1f} points (goal >= "
            f"-0.5), throughput {mine[0]['tokens_per_second'] / other['tokens_per_second']:.2f}x "
            f"(goal >= 1.2x), peak RSS "
            f"{mine[0]['peak_rss_mb'] / other['peak_rss_mb']:.2f}x")
  return "\n".join(lines)


def main():
  args = parse_args()
  os.chdir(REPO)
  if args.table_only:
    with open(args.results) as f:
      rows = [json.loads(l) for l in f if l.strip()]
    latest = {(r["task"], r["library"].split(" ")[0], r.get("variant")): r
              for r in rows}  # the newest run of each task and variant
    print(f"Results file: {args.results}, the newest run of each task and "
          f"variant (sessions {', '.join(sorted({r['session'] for r in latest.values()}))})\n")
    print(table(list(latest.values())))
    return
  session = time.strftime("%Y-%m-%dT%H:%M:%S")
  os.makedirs(args.out, exist_ok=True)
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  variants = [v.strip() for v in args.variants.split(",") if v.strip()]
  rows = []
  for i, task in enumerate(t.strip() for t in args.tasks.split(",")):
    common = dict(session=session, task=task,
                  max_seq_length=args.max_seq_length,
                  train_batch_size=args.train_batch_size,
                  num_train_epochs=args.num_train_epochs,
                  learning_rate=args.learning_rate,
                  adapter_size=args.adapter_size, seed=args.seed,
                  cpus=os.cpu_count(), machine=platform.machine())
    jobs = [lambda: ours(task, args, common)] + [
        (lambda v=v: theirs(task, v, args, common)) for v in variants]
    if i % 2:
      jobs.reverse()
    for job in jobs:
      row = dict(job(), loadavg=os.getloadavg(),
                 finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
      rows.append(row)
      with open(args.results, "a") as f:
        f.write(json.dumps(row) + "\n")
      print(json.dumps({k: row.get(k) for k in (
          "task", "library", "variant", "metrics", "tokens_per_second",
          "peak_rss_mb", "error")}), flush=True)
  print()
  print(table(rows))


if __name__ == "__main__":
  main()
