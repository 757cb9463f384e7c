"""Re-runs one finished row of the paper plan and checks its metrics.

Takes the row's stored command from the results file (thread settings
included), runs it with a fresh --output_dir (runs/repro/<name>), and appends
one JSON line with the stored and the new dev metrics and whether they are
equal to the printed precision of eval_results.txt (and, for a row with a dev
curve, whether every evaluation of the curve is: "dev_curve_equal").

With --replace, a row whose re-run differs takes the re-run's metrics and
wall time (its old ones kept under "replaced"): for rows from runs that were
resumed without --deterministic, whose dropout stream restarted at the
resume, so that their stored command, run unbroken, gives another number.

Usage (from the repo root):
  python -m benchmarks.paper.reproduce mrpc_adapter64_lr3e-4_s1
  python -m benchmarks.paper.reproduce cola_full_lr5e-5_s1 --replace
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from benchmarks.paper import run_plan


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("name", help="a run name in the results file")
  parser.add_argument("--results", default="benchmarks/results/paper.jsonl")
  parser.add_argument("--out", default="runs/repro")
  parser.add_argument("--python", default=".venv/bin/python")
  parser.add_argument("--repro_results",
                      default="benchmarks/results/paper_repro.jsonl")
  parser.add_argument("--replace", action="store_true",
                      help="if the re-run differs, replace the row's "
                      "metrics in --results with the re-run's")
  args = parser.parse_args(argv)
  os.chdir(run_plan.REPO)
  rows = [r for r in run_plan.load_results(args.results)
          if r["name"] == args.name]
  if not rows:
    parser.error(f"no run named {args.name!r} in {args.results}; "
                 "pick a name from that file")
  row = rows[-1]
  env, driver_words = run_plan.split_command(row["command"])
  output_dir = os.path.join(args.out, args.name)
  shutil.rmtree(output_dir, ignore_errors=True)  # a fresh run, not a resume
  os.makedirs(args.out, exist_ok=True)
  # absl keeps the last value of a repeated flag.
  driver_argv = [args.python] + driver_words + [f"--output_dir={output_dir}"]
  print("running:", " ".join(driver_argv), flush=True)
  start = time.time()
  with open(output_dir + ".log", "w") as log:
    code = subprocess.call(driver_argv, stdout=log, stderr=subprocess.STDOUT,
                           env=dict(os.environ, **env))
  if code != 0:
    sys.exit(f"reproduce.py: error: the run failed (exit {code}); see "
             f"{output_dir}.log")
  metrics = run_plan.read_metrics(output_dir)
  curve = run_plan.read_dev_curve(output_dir)
  line = dict(name=args.name, stored=row["metrics"], rerun=metrics,
              equal=metrics == row["metrics"],
              **(dict(dev_curve_equal=curve == row["dev_curve"])
                 if "dev_curve" in row else {}),
              stored_resumed=row["resumed"], env=env,
              wall_seconds=int(time.time() - start),
              command=" ".join(["python -m benchmarks.paper.reproduce"] +
                               (sys.argv[1:] if argv is None else argv)),
              finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
  if args.replace and not line["equal"]:
    replace_row(args.results, row, metrics, line, curve)
    line["replaced"] = True
  with open(args.repro_results, "a") as f:
    f.write(json.dumps(line) + "\n")
  print(json.dumps(line, indent=1))


def replace_row(path, row, metrics, line, curve=None):
  """Rewrites results file `path` with `row` re-measured (atomically)."""
  with run_plan.locked(path):
    rows = run_plan.load_results(path)
    for r in rows:
      if r["name"] == row["name"]:
        r["replaced"] = dict(metrics=r["metrics"],
                             wall_seconds=r["wall_seconds"],
                             resumed=r["resumed"], finished=r.get("finished"))
        r.update(metrics=metrics, wall_seconds=line["wall_seconds"],
                 resumed=False, finished=line["finished"])
        if curve is not None:
          r["replaced"]["dev_curve"] = r.get("dev_curve")
          r["dev_curve"] = curve
    with open(path + ".tmp", "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
  main()
