"""Dev score and training time against the trunk depth k (plan block 20).

For each task, adapters m=64 at full depth (k = 0) and with blocks 0..k-1
left out and cached (`adapter64_drop<k>`), seed by seed: the 3-epoch runs
at the m=64 best rate and the 20-epoch runs at 1e-3, from the plan's
results file; "wall" is the run's wall time (runs at --jobs 2, one thread
each; a resumed run's wall time holds its last segment only). Rows of
different days ran on different machines and loads: compare speed with
the race in benchmarks/adapterhub/compare.py, not with these walls.

  python -m benchmarks.paper.drop_table [--results benchmarks/results/paper.jsonl]
"""

import argparse
import json
import statistics

from benchmarks.paper import plan
from benchmarks.paper import run_plan

METHODS = ("adapter64",) + plan.DROP_METHODS


def depth(method):
  return int(method.split("_drop")[1]) if "_drop" in method else 0


def rows_of(rows, task, method, epochs):
  """Runs of `method` on `task` for `epochs` at the block's rate."""
  lr = run_plan.best_lr(rows, task, "adapter64") if epochs == plan.TASKS[
      task][3] else "1e-3"
  return sorted((r for r in rows if (
      r["task"], r["method"], r["lr"], r["num_train_epochs"], r["init"]) == (
          task, method, lr, epochs, plan.DEFAULT_INIT) and r.get(
              "batching", "dynamic") == "dynamic"), key=lambda r: r["seed"])


def table(rows):
  lines = ["| task | epochs | k | seed 1 | all seeds: mean (seeds) | "
           "wall, seed 1 (min) | finished |", "|---" * 7 + "|"]
  for task in plan.TASKS:
    for epochs in sorted({plan.TASKS[task][3], 20}):
      for method in METHODS:
        found = rows_of(rows, task, method, epochs)
        first = [r for r in found if r["seed"] == 1]
        if not first:
          continue
        score = lambda r: 100 * run_plan.selection_score(r)
        wall = first[0]["wall_seconds"]
        lines.append(
            f"| {task} | {epochs} | {depth(method)} | {score(first[0]):.1f} "
            f"| {statistics.mean(map(score, found)):.1f} "
            f"({','.join(str(r['seed']) for r in found)}) | "
            f"{wall / 60:.1f} | {first[0]['finished'][:10]} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--results", default="benchmarks/results/paper.jsonl")
  args = parser.parse_args()
  with open(args.results) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  print(table(rows))


if __name__ == "__main__":
  main()
