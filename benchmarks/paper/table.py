"""The paper's Table 1/2 from the plan's results file, as Markdown.

For every task and method: the learning rate with the best seed-1 dev score
(run_plan.best_lr; adapters m=8/256 and top-1 use the rate of m=64 and
top-3, plan.lr_source), then the mean ± s.e.m. over the seeds run at it.
Scores are x100. MRPC shows accuracy/F1, STS-B Spearman, CoLA Matthews, RTE
and SST-2 accuracy; "mean" averages one score per task (MRPC: the mean of
accuracy and F1, the score the learning rate was selected on).

Runs trained for other epochs than plan.TASKS' (the probe, block 8) stay out
of the table; a section below it lists them with their dev curves, and the
selection over every epoch count run (protocol.py) follows the table, with
its own goal check. A cell without runs says "planned" if a plan block
trains it, "not run" if none does.

Usage: python -m benchmarks.paper.table [benchmarks/results/paper.jsonl] \
         [--doc docs/RESULTS.md] [--out benchmarks/results/paper_table.md]
--doc also puts the table, the selection over every epoch count and the
long runs between the doc's BEGIN/END marker lines; --out writes the whole
output (also the commands behind each cell) to a file instead of stdout.
Both are written only once everything checks out, each by an atomic
rename: an error leaves them as they were.
"""

import argparse
import math
import os
import statistics
import sys

from benchmarks.paper import plan
from benchmarks.paper import protocol
from benchmarks.paper import run_plan

LABELS = dict(adapter8="Adapters (m=8)", adapter64="Adapters (m=64)",
              adapter256="Adapters (m=256)",
              pfeiffer64="Adapters, Pfeiffer placement (m=64)",
              parallel64="Adapters, parallel (m=64, update x4)",
              fusion_pfeiffer64="AdapterFusion of the 4 Pfeiffer packs",
              full="Full fine-tuning",
              top1="Top-1 layer fine-tuning", top3="Top-3 layer fine-tuning",
              ln="LayerNorm only")
BEST_ADAPTER = "Adapters (best m of 8/64/256 per task)"


def mean_sem(values):
  if len(values) < 2:
    return values[0], None
  return (statistics.mean(values),
          statistics.stdev(values) / math.sqrt(len(values)))


def fmt(values):
  mean, sem = mean_sem([100 * v for v in values])
  return f"{mean:.1f}" + (f" ± {sem:.1f}" if sem is not None else "")


class Cell:
  """One task x method: the best-rate runs of every seed."""

  def __init__(self, rows, task, method):
    rows = [r for r in rows if plan.epochs_of(r) == plan.TASKS[task][3]
            and plan.batching_of(r) == "dynamic"]
    source = plan.lr_source(method)
    self.lr = run_plan.best_lr(rows, task, source)
    self.partial = self.lr is None  # sweep not complete: best so far
    sweep = [r for r in rows if (r["task"], r["method"], r["seed"], r["init"])
             == (task, source, 1, plan.DEFAULT_INIT)]
    if self.partial and sweep:
      self.lr = max(sweep, key=run_plan.selection_score)["lr"]
    self.runs = sorted((r for r in rows if (r["task"], r["method"], r["lr"],
                                            r["init"]) ==
                        (task, method, self.lr, plan.DEFAULT_INIT)),
                       key=lambda r: r["seed"])
    self.task, self.method = task, method

  def __bool__(self):
    return bool(self.runs)

  def seed1_score(self):
    return run_plan.selection_score(self.runs[0])

  def values(self, key):
    return [r["metrics"][f"eval_{key}"] for r in self.runs]

  def text(self):
    keys = plan.TASKS[self.task][4]
    text = " / ".join(fmt(self.values(k)) for k in keys)
    marks = f" (n={len(self.runs)})"
    return text + marks + ("*" if self.partial else "")

  def score(self):
    return statistics.mean(map(run_plan.selection_score, self.runs))

  def trained_fraction(self):
    run = self.runs[0]
    return run["trained_params"] / run["backbone_params"]


BEST_ADAPTER_METHODS = ("adapter8", "adapter64", "adapter256")


def best_adapter_cell(rows, task):
  cells = [c for c in (Cell(rows, task, m) for m in BEST_ADAPTER_METHODS)
           if c]
  return max(cells, key=Cell.seed1_score) if cells else None


def planned_cells():
  """{(task, method)} that a plan block trains under the table's protocol
  (the task's epochs, dynamic padding, default init)."""
  return {(p["task"], p["method"]) for _, p in plan.unique_points()
          if plan.epochs_of(p) == plan.TASKS[p["task"]][3] and
          plan.batching_of(p) == "dynamic" and p["init"] == plan.DEFAULT_INIT}


def missing_text(task, methods, planned):
  """What a cell without runs says: "planned" if a plan block trains one of
  `methods` on `task`, else "not run"."""
  return ("planned" if any((task, m) in planned for m in methods)
          else "not run")


def table(rows):
  tasks = [t for t in plan.TASKS if any(r["task"] == t for r in rows)]
  lines = ["| method | " + " | ".join(
      f"{t} ({'/'.join(plan.TASKS[t][4])})" for t in tasks) +
           " | mean | trained params / task | total params, all tasks |",
           "|---|" + "---|" * (len(tasks) + 3)]
  summary, planned = {}, planned_cells()
  methods = [(LABELS[m], m) for m in plan.TABLE_METHODS]
  methods.insert(3, (BEST_ADAPTER, None))
  for label, method in methods:
    cells = [Cell(rows, t, method) if method else best_adapter_cell(rows, t)
             for t in tasks]
    if not any(cells):
      continue
    texts = [(c.text() + (f" m={c.method[7:]}" if method is None else ""))
             if c else missing_text(t, (method,) if method else
                                    BEST_ADAPTER_METHODS, planned)
             for t, c in zip(tasks, cells)]
    present = [c for c in cells if c]
    mean = statistics.mean(100 * c.score() for c in present)
    fractions = [c.trained_fraction() for c in present]
    per_task = 100 * statistics.mean(fractions)
    # Full fine-tuning stores a whole model per task; every other method
    # stores the backbone once plus its trained variables per task.
    total = sum(fractions) + (0 if method == "full" else 1)
    note = ("" if len(present) == len(tasks)
            else f" ({len(present)} of {len(tasks)} tasks)")
    lines.append(f"| {label} | " + " | ".join(texts) +
                 f" | {mean:.1f}{note} | {per_task:.2f} % | {total:.2f}x |")
    summary[label] = {t: c for t, c in zip(tasks, cells) if c}
  lines.append("")
  lines.append("Scores x100, mean ± s.e.m. over seeds at the learning rate "
               "with the best seed-1 dev score (adapters m=8/256: that of "
               "m=64; top-1: that of top-3); n = seeds; * = that "
               "learning-rate sweep is incomplete (best so far); planned = "
               "a plan block trains that cell, not run yet; not run = no "
               "plan block trains it. Total params: backbone = 1x, for the "
               f"{len(tasks)} task(s) above.")
  lines.extend(goal_check(summary.get(LABELS["full"], {}),
                          summary.get(BEST_ADAPTER, {}), tasks))
  return "\n".join(lines)


def goal_check(full, best, tasks):
  """The project's goal for the adapters (within 0.5 points of full
  fine-tuning's mean, at most 2.5 % of the backbone trained per task), on
  the tasks both rows have so far."""
  common = [t for t in tasks if t in full and t in best]
  if not common:
    return []
  gap = 100 * (statistics.mean(best[t].score() for t in common) -
               statistics.mean(full[t].score() for t in common))
  per_task = 100 * statistics.mean(best[t].trained_fraction() for t in common)
  scope = ("" if len(common) == len(tasks) else
           f" (on the {len(common)} tasks both rows have: "
           f"{', '.join(common)})")
  return [f"\nGoal check{scope}: adapters (best m) mean - full fine-tuning "
          f"mean = {gap:+.1f} points (goal >= -0.5); adapters train "
          f"{per_task:.2f} % of the backbone per task (goal <= 2.5 %)."]


def runs_table(rows):
  """Which run produced each cell: its learning rate and seed-1 command."""
  lines = ["| task | method | best lr | seeds | seed-1 command |",
           "|---|---|---|---|---|"]
  for task in plan.TASKS:
    for method in plan.TABLE_METHODS:
      cell = Cell(rows, task, method)
      if cell:
        seeds = ",".join(str(r["seed"]) for r in cell.runs)
        lines.append(f"| {task} | {method} | {cell.lr}"
                     f"{'*' if cell.partial else ''} | {seeds} | "
                     f"`{cell.runs[0]['command']}` |")
  return "\n".join(lines)


def curve_text(row):
  """'best 27.3 @ epoch 9, last 25.1' from a row's dev curve (x100, the
  selection score), or '' without one."""
  curve = row.get("dev_curve")
  if not curve:
    return ""
  keys = plan.TASKS[row["task"]][4]
  scores = [sum(l[f"eval_{k}"] for k in keys) / len(keys) for l in curve]
  best = max(range(len(scores)), key=lambda i: (scores[i], -i))
  return (f"best {100 * scores[best]:.1f} @ epoch {curve[best]['epoch']}, "
          f"last {100 * scores[-1]:.1f}; " +
          " ".join(f"{100 * s:.1f}" for s in scores))


def long_runs_table(rows):
  """Runs of other epochs than plan.TASKS' beside the same setting at the
  task's epochs; '' if there are none."""
  lines = []
  for r in rows:
    if plan.epochs_of(r) == plan.TASKS[r["task"]][3]:
      continue
    short = run_plan.at_task_epochs(r, rows)
    short = f"{100 * run_plan.selection_score(short):.1f}" if short else "-"
    lines.append(f"| {r['task']} | {r['method']} | {r['lr']} | {r['seed']} "
                 f"| {plan.epochs_of(r)} | "
                 f"{100 * run_plan.selection_score(r):.1f} | {short} | "
                 f"{curve_text(r)} |")
  if not lines:
    return ""
  return "\n".join([
      "| task | method | lr | seed | epochs | dev score | at the plan's "
      "epochs | dev curve (per evaluation) |",
      "|---|---|---|---|---|---|---|---|"] + lines)


def bucketing_table(rows):
  """Block 9: --bucket_by_length beside --dynamic_padding, same task,
  method, rate and seeds (the runs differ in batching only); scores x100
  per seed, mean ± s.e.m., and the difference of the means; '' without
  bucketed runs."""
  lines = []
  bucketed = [r for r in rows if plan.batching_of(r) == "bucketed"]
  for key in sorted({(r["task"], r["method"], r["lr"]) for r in bucketed}):
    def runs(batching):
      return sorted((r for r in rows if (r["task"], r["method"], r["lr"])
                     == key and plan.batching_of(r) == batching and
                     r["init"] == plan.DEFAULT_INIT and
                     plan.epochs_of(r) == plan.TASKS[key[0]][3]),
                    key=lambda r: r["seed"])
    for metric in plan.TASKS[key[0]][4]:
      cells, means = [], []
      for batching in ("dynamic", "bucketed"):
        values = [r["metrics"][f"eval_{metric}"] for r in runs(batching)]
        seeds = " ".join(f"{100 * v:.1f}" for v in values)
        cells.append(f"{seeds} ({fmt(values)})" if values else "-")
        means.append(statistics.mean(values) if values else None)
      diff = (f"{100 * (means[1] - means[0]):+.1f}" if None not in means
              else "-")
      lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {metric} | "
                   f"{cells[0]} | {cells[1]} | {diff} |")
  if not lines:
    return ""
  return "\n".join([
      "| task | method | lr | metric | dynamic padding: seeds (mean ± s.e.m.) "
      "| bucketed: seeds (mean ± s.e.m.) | bucketed − dynamic |",
      "|---|---|---|---|---|---|---|"] + lines)


BEGIN, END = "<!-- table.py: begin -->", "<!-- table.py: end -->"


def write_into(doc, text):
  """Replaces what is between `doc`'s BEGIN and END lines with `text`."""
  if not os.path.isfile(doc):
    sys.exit(f"table.py: error: --doc {doc}: no such file")
  with open(doc) as f:
    lines = f.read().split("\n")
  if lines.count(BEGIN) != 1 or lines.count(END) != 1 or (
      lines.index(BEGIN) > lines.index(END)):
    sys.exit(f"table.py: error: {doc} needs one line {BEGIN} and, below it, "
             f"one line {END}; add them where the table goes")
  lines[lines.index(BEGIN) + 1:lines.index(END)] = text.split("\n")
  write_atomically(doc, "\n".join(lines))


def write_atomically(path, text):
  tmp = path + ".tmp"
  try:
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _section(title, text):
  return f"\n{title}:\n\n{text}\n" if text else ""


def documents(rows, path):
  """(the part of RESULTS.md between the markers, the whole --out file):
  Table 1/2, the selection over every epoch count run and the long runs'
  dev curves; --out adds the commands and block 9's comparison."""
  hours = sum(r["wall_seconds"] for r in rows) / 3600
  jobs = "/".join(str(j) for j in sorted({r.get("jobs", 1) for r in rows}))
  head = (f"Results file: `{path}` ({len(rows)} runs; their wall times sum "
          f"to {hours:.1f} h, {jobs} run(s) at a time)\n")
  long_runs = (
      _section("Selected over every epoch count run (scores x100 as "
               "selected on)", protocol.selection_table(rows)) +
      _section("Held-out seeds: selected on seed 1, judged on seeds 2-3 "
               "(scores x100)", protocol.held_out_table(rows)) +
      _section("Runs of other epochs (not in Table 1/2; scores x100 as "
               "selected on)", long_runs_table(rows)))
  doc = f"{head}\n{table(rows)}\n{long_runs}"
  output = (doc + _section(
      "Runs behind each cell (other seeds: same command with --seed=N; every "
      "command is in the results file)", runs_table(rows)) + _section(
          "Bucketed vs dynamic padding (block 9; not in the tables above)",
          bucketing_table(rows)))
  return doc, output


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("results", nargs="?",
                      default="benchmarks/results/paper.jsonl")
  parser.add_argument("--doc", help="also write the table into this file")
  parser.add_argument("--out", help="write the output here, not to stdout")
  args = parser.parse_args()
  if args.out and not os.path.isdir(os.path.dirname(args.out) or "."):
    sys.exit(f"table.py: error: --out {args.out}: its directory does not "
             "exist")
  path = args.results
  rows = run_plan.load_results(path)
  if not rows:
    sys.exit(f"table.py: error: no results in {path}; run "
             "python -m benchmarks.paper.run_plan first")
  doc, output = documents(rows, path)
  if args.doc:
    write_into(args.doc, doc)
  if args.out:
    write_atomically(args.out, output)
  else:
    sys.stdout.write(output)


if __name__ == "__main__":
  main()
