"""The paper's analysis figures as PNGs, each from one results file.

  tradeoff  Fig. 3/4: dev score vs trained parameters per task, adapter sizes
            2^0..2^8 (at the m=64 sweep's best rate), top-k fine-tuning
            k=1..6 (at the top-3 sweep's best rate), LayerNorm-only, and full
            fine-tuning as a line; MRPC and CoLA (benchmarks/results/paper.jsonl)
  ablation  Fig. 6 left/centre: relative drop of the dev score when the
            adapters of layers i..j are removed, no retraining
            (benchmarks/results/ablation.jsonl, from paper/ablation.py)
  init      Fig. 6 right: MRPC dev score vs the adapters' init std
            (benchmarks/results/paper.jsonl)
  curves    the paper's other epoch budget: the dev score after every epoch
            of the runs trained longer than the plan's 3 epochs (block 8's
            20-epoch probe), the 3-epoch run at the same rate beside it
            (benchmarks/results/paper.jsonl)

Points are the mean over the seeds run (error bars: s.e.m.). Usage:
  python -m benchmarks.figures tradeoff   # -> docs/tradeoff.png
  python -m benchmarks.figures ablation   # -> docs/ablation.png
  python -m benchmarks.figures init       # -> docs/init_robustness.png
  python -m benchmarks.figures curves     # -> docs/dev_curves.png
"""

import argparse
import json
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # pylint: disable=g-import-not-at-top
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from benchmarks.paper import plan  # pylint: disable=g-import-not-at-top
from benchmarks.paper import run_plan  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCORE_NAMES = {"MRPC": "(accuracy + F1) / 2", "RTE": "accuracy",
               "CoLA": "Matthews corr.", "STS-B": "Spearman",
               "SST-2": "accuracy"}


def _stats(rows):
  scores = [100 * run_plan.selection_score(r) for r in rows]
  sem = (statistics.stdev(scores) / math.sqrt(len(scores))
         if len(scores) > 1 else 0.0)
  return statistics.mean(scores), sem


def _points(rows, task, methods, lr, init=plan.DEFAULT_INIT):
  """[(trained params, mean, sem, method)] of `methods` at rate `lr`."""
  points = []
  for method in methods:
    runs = [r for r in rows if (r["task"], r["method"], r["lr"], r["init"])
            == (task, method, lr, init)]
    if runs:
      points.append((runs[0]["trained_params"], *_stats(runs), method))
  return points


def _best_or_partial(rows, task, method):
  """The sweep's best rate, or the best so far (flagged) if incomplete."""
  lr = run_plan.best_lr(rows, task, method)
  if lr is not None:
    return lr, False
  sweep = [r for r in rows if (r["task"], r["method"], r["seed"], r["init"])
           == (task, method, 1, plan.DEFAULT_INIT)]
  if not sweep:
    return None, True
  return max(sweep, key=run_plan.selection_score)["lr"], True


def _plot_series(ax, points, label, marker):
  if points:
    xs, ys, errs, _ = zip(*points)
    ax.errorbar(xs, ys, yerr=errs, marker=marker, capsize=3, label=label)


def _full_line(ax, rows, task):
  """Full fine-tuning at its best rate as a dashed reference line."""
  lr, _ = _best_or_partial(rows, task, "full")
  full = _points(rows, task, ["full"], lr) if lr else []
  if full:
    params, mean, sem, _ = full[0]
    ax.axhline(mean, color="k", linestyle="--",
               label=f"full fine-tuning ({params / 1e6:.1f}M, lr {lr})")
    ax.axhspan(mean - sem, mean + sem, color="k", alpha=0.1)


def tradeoff(args):
  rows = run_plan.load_results(args.results)
  tasks = [t for t in plan.FIGURE_TASKS if any(r["task"] == t for r in rows)]
  if not tasks:
    sys.exit(f"figures.py: error: no {'/'.join(plan.FIGURE_TASKS)} runs in "
             f"{args.results}; run python -m benchmarks.paper.run_plan "
             "--blocks 6")
  fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 5.2),
                           squeeze=False)
  for ax, task in zip(axes[0], tasks):
    notes = []
    for method, methods, label, marker in (
        ("adapter64", [f"adapter{2 ** i}" for i in range(9)],
         "adapters, m = 1..256", "o"),
        ("top3", [f"top{k}" for k in range(1, 7)],
         "top-k layers, k = 1..6", "s"),
        ("ln", ["ln"], "LayerNorm only", "^")):
      lr, partial = _best_or_partial(rows, task, method)
      if lr:
        _plot_series(ax, _points(rows, task, methods, lr),
                     f"{label} (lr {lr})", marker)
        notes += ["*"] if partial else []
    _full_line(ax, rows, task)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("trained parameters per task")
    ax.set_ylabel(f"dev {SCORE_NAMES[task]} x100")
    ax.set_title(task + (" (* a sweep incomplete)" if notes else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=2)  # below the axes: clear of the data and the band
  _save(fig, args.out or os.path.join(REPO, "docs/tradeoff.png"))


def ablation(args):
  with open(args.results) as f:
    lines = [json.loads(l) for l in f if l.strip()]
  if args.pack:
    lines = [l for l in lines if l["adapter_pack"] == args.pack]
  if not lines:
    sys.exit(f"figures.py: error: no ablation of {args.pack or 'any pack'} in "
             f"{args.results}; run python -m benchmarks.paper.ablation")
  line = lines[-1]
  keys, layers = line["score_keys"], line["layers"]
  score = lambda m: sum(m[k] for k in keys) / len(keys)
  base = score(line["baseline"])
  grid = [[math.nan] * layers for _ in range(layers)]
  for span in line["spans"]:
    drop = 100 * (base - score(span["metrics"])) / base
    grid[span["last"]][span["first"]] = drop
  fig, ax = plt.subplots(figsize=(5.5, 4.5))
  # Diverging around 0: red = worse without those adapters, blue = better.
  limit = max(1e-9, max(abs(v) for row in grid for v in row
                        if not math.isnan(v)))
  image = ax.imshow(grid, origin="lower", cmap="RdBu_r", vmin=-limit,
                    vmax=limit)
  for span in line["spans"]:
    value = grid[span["last"]][span["first"]]
    ax.text(span["first"], span["last"], f"{value:.1f}", ha="center",
            va="center", fontsize=8)
  ax.set_xticks(range(layers))
  ax.set_yticks(range(layers))
  ax.set_xlabel("first layer with adapters removed")
  ax.set_ylabel("last layer with adapters removed")
  fig.colorbar(image, label="relative drop of the dev score (%)")
  ax.set_title(f"{line['task'].upper()} m={line['adapter_size']}: with all "
               f"adapters {100 * base:.1f}, with none "
               f"{100 * score(line['all_removed']):.1f}\n"
               f"score {_score_name(keys)}, "
               f"{line['dev_examples']} dev examples", fontsize=9)
  _save(fig, args.out or os.path.join(REPO, "docs/ablation.png"))


def _score_name(keys):
  return f"({' + '.join(keys)}) / {len(keys)}" if len(keys) > 1 else keys[0]


def init(args):
  rows = run_plan.load_results(args.results)
  lr, partial = _best_or_partial(rows, "MRPC", "adapter64")
  points = []
  for scale in plan.INIT_SCALES:
    runs = [r for r in rows if (r["task"], r["method"], r["lr"], r["init"])
            == ("MRPC", "adapter64", lr, scale)]
    if runs:
      points.append((float(scale), *_stats(runs), len(runs)))
  if not points:
    sys.exit(f"figures.py: error: no MRPC init-scale runs in {args.results}; "
             "run python -m benchmarks.paper.run_plan --blocks 7")
  xs, ys, errs, counts = zip(*points)
  fig, ax = plt.subplots(figsize=(5.5, 4))
  seeds = "-".join(map(str, sorted({min(counts), max(counts)})))
  ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3,
              label=f"adapters m=64 ({seeds} seed(s) a point)")
  _full_line(ax, rows, "MRPC")
  # At least 10 points of score on the axis, so seed noise looks like noise.
  low, high = ax.get_ylim()
  middle = (low + high) / 2
  ax.set_ylim(min(low, middle - 5), max(high, middle + 5))
  ax.legend(fontsize=8, loc="lower left")
  ax.set_xscale("log")
  ax.set_xlabel("std of the adapters' initial weights")
  ax.set_ylabel(f"MRPC dev {SCORE_NAMES['MRPC']} x100")
  ax.set_title(f"MRPC, adapters m=64, lr {lr}"
               + (" (* sweep incomplete)" if partial else ""))
  ax.grid(alpha=0.3)
  _save(fig, args.out or os.path.join(REPO, "docs/init_robustness.png"))


def curve_series(rows, task):
  """Per long run of `task` with a dev curve (not at plan.TASKS' epochs):
  (run, epochs, scores x100, the same setting's run at the task's epochs or
  None), in the figure's order."""
  keys = plan.TASKS[task][4]
  long_runs = sorted((r for r in rows if r["task"] == task and
                      r.get("dev_curve") and
                      plan.epochs_of(r) != plan.TASKS[task][3]),
                     key=lambda r: (r["method"], float(r["lr"]), r["seed"]))
  return [(r, [l["epoch"] for l in r["dev_curve"]],
           [100 * sum(l[f"eval_{k}"] for k in keys) / len(keys)
            for l in r["dev_curve"]], run_plan.at_task_epochs(r, rows))
          for r in long_runs]


def curves(args):
  rows = run_plan.load_results(args.results)
  series = {t: curve_series(rows, t) for t in plan.TASKS}
  tasks = [t for t in plan.TASKS if series[t]]
  if not tasks:
    sys.exit(f"figures.py: error: no runs with a dev curve in {args.results}; "
             "run python -m benchmarks.paper.run_plan --blocks 8")
  fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.6),
                           squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for r, epochs, scores, short in series[task]:
      line, = ax.plot(epochs, scores, marker=".",
                      linestyle="--" if r["method"] == "full" else "-",
                      label=f"{r['method']} lr {r['lr']}, "
                      f"{plan.epochs_of(r)} epochs, seed {r['seed']}")
      if short:
        ax.plot([plan.epochs_of(short)],
                [100 * run_plan.selection_score(short)], marker="D",
                markersize=8, fillstyle="none", color=line.get_color(),
                linestyle="none")
    ax.plot([], [], marker="D", fillstyle="none", color="gray",
            linestyle="none", label="the same rate and seed, 3 epochs")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"dev {SCORE_NAMES[task]} x100")
    ax.set_title(task)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  _save(fig, args.out or os.path.join(REPO, "docs/dev_curves.png"))


def _save(fig, path):
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path + ".tmp.png", dpi=110)
  os.replace(path + ".tmp.png", path)
  print(f"wrote {path}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("figure", choices=["tradeoff", "ablation", "init",
                                             "curves"])
  parser.add_argument("--results", default=None,
                      help="default: benchmarks/results/paper.jsonl "
                      "(ablation.jsonl for ablation)")
  parser.add_argument("--out", default=None, help="PNG path")
  parser.add_argument("--pack", default=None,
                      help="ablation: plot the last line of this adapter pack "
                      "(default: the file's last line)")
  args = parser.parse_args()
  if args.results is None:
    name = "ablation.jsonl" if args.figure == "ablation" else "paper.jsonl"
    args.results = os.path.join(REPO, "benchmarks/results", name)
  dict(tradeoff=tradeoff, ablation=ablation, init=init,
       curves=curves)[args.figure](args)


if __name__ == "__main__":
  main()
