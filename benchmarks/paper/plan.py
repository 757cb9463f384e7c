"""The paper-reproduction plan: every run_classifier.py run, by block.

The runs that Table 1/2 and the analysis figures of Houlsby et al. (2019)
need, in priority order, with a CPU-time estimate per block.

Usage: python -m benchmarks.paper.plan            # blocks, run counts, hours
       python -m benchmarks.paper.plan --list     # every point and its command

A point's name depends only on its settings (never on its block), so a run
needed by two blocks (e.g. MRPC adapters m=8 at the sweep's best rate, used by
the table and the trade-off figure) is trained once. Learning rates written
"best:<method>" are resolved from the results file: the rate of the seed-1
sweep of <method> on that task with the best dev score, once all of that
sweep's runs are in (until then those points wait). The sweep is always the
one at the task's epochs in TASKS (3). "below:<method>" is the next lower rate
of <method>'s grid (at the bottom of the grid, the best rate itself: the same
run). "sel:<method>" is the seed-1 selection of <method> over the sweep and
the point's longer epochs at the best rate and the one below (block 8's
20-epoch probe), as the paper selects over epochs {3, 20}: both its epochs
and its rate, once those runs are in. A point trained for other epochs than
TASKS' has "_ep<N>" in its name.
An AdapterFusion point ("fusion_<source method>", block 16) fuses the
seed-1 packs of <source method> on FUSION_SOURCES at the adapter64 best rate
and waits for them; it trains at a fixed rate.

To fit 2 CPU cores, four methods are swept (adapters m=64, full, top-3,
LayerNorm-only); the other adapter sizes train at the m=64 rate and the other
top-k at the top-3 rate (lr_source), as the paper's trade-off figures do.
"""

import argparse
import os

DATA = os.environ.get("DATA", "../shared/data/glue_data")
OUT = os.environ.get("OUT", "runs/paper")
# SST-2: a fixed subset, the first SST2_ROWS training rows in file order
# (55 % positive, as in the full file); written by run_plan.py.
SST2_ROWS = 10000
SST2_DIR = os.path.join(OUT, "data", "SST-2-first10k")

# Task -> (data dir, training rows, max_seq_length, epochs, selection metric).
# The selection metric picks the best learning rate on dev; MRPC uses the mean
# of accuracy and F1 (the GLUE leaderboard's MRPC score).
TASKS = {
    "MRPC": (f"{DATA}/MRPC", 3668, 128, 3, ("accuracy", "f1")),
    "RTE": (f"{DATA}/RTE", 2490, 128, 3, ("accuracy",)),
    "STS-B": (f"{DATA}/STS-B", 5749, 128, 3, ("spearman",)),
    "CoLA": (f"{DATA}/CoLA", 8551, 64, 3, ("matthews_corr",)),
    "SST-2": (SST2_DIR, SST2_ROWS, 64, 3, ("accuracy",)),
}
SMALL_TASKS = ("MRPC", "RTE", "STS-B", "CoLA")
# The trade-off figure's tasks: MRPC, and CoLA rather than RTE, as in the
# paper's Fig. 4: at 3 epochs this model's RTE runs score within 7 points of
# the majority class (52.7 %; 277 dev pairs), too little signal to separate
# adapter sizes.
FIGURE_TASKS = ("MRPC", "CoLA")

# Learning-rate grids: the paper's for adapters and full fine-tuning; the
# adapter grid for LayerNorm-only, and one centred on the driver's default
# (1e-4) for top-k.
LR_GRID = {
    "adapter": ("3e-4", "1e-3", "3e-3"),
    "full": ("2e-5", "5e-5", "1e-4"),
    "top_k": ("5e-5", "1e-4", "3e-4"),
    "layer_norm": ("3e-4", "1e-3", "3e-3"),
    "fusion": ("5e-5",),  # FUSION_LR, not swept
}
# Dev examples per task (the dev curve's evaluations cost a forward pass each).
DEV_ROWS = {"MRPC": 408, "RTE": 277, "STS-B": 1500, "CoLA": 1043,
            "SST-2": 872}
TABLE_METHODS = ("adapter8", "adapter64", "adapter256", "pfeiffer64",
                 "parallel64", "fusion_pfeiffer64", "full", "top1", "top3",
                 "ln")
# Adapter types other than the paper's, as method-name prefixes
# ('pfeiffer64': --adapter_type=pfeiffer --adapter_size=64).
OTHER_ADAPTER_TYPES = ("pfeiffer", "parallel")
# AdapterFusion ('fusion_pfeiffer64'): the tasks whose seed-1 packs it fuses
# (the target's own among them, as Pfeiffer et al. 2021 do), and its rate
# (theirs for the fusion stage, 5e-5).
FUSION_SOURCES = SMALL_TASKS
FUSION_LR = LR_GRID["fusion"][0]
INIT_SCALES = ("1e-7", "1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1")
DEFAULT_INIT = "1e-3"

# Seconds per training step at batch 32, max_seq_length 128, XLA off, on the
# 2 quiet cores: benchmarks/results/speed.jsonl of 2026-11-23 (adapters 4.27,
# full 5.37, LayerNorm-only 3.85; an earlier, faster day gave adapters 2.4 and
# full 3.5). Top-k is interpolated by how much of the backward pass it runs
# (a forward is about a third of a full step). max_seq_length 64 costs
# SEQ64_FACTOR of that (speed.py's CPU seconds per step at 64 vs 128, 3 steps
# on a loaded machine: adapter 0.43, full 0.51, LayerNorm-only 0.44).
STEP_SECONDS_128 = dict(adapter=4.27, full=5.37, layer_norm=3.85,
                        fusion=5.5)  # fusion: a guess, not yet measured
SEQ64_FACTOR = 0.5
RUN_OVERHEAD_SECONDS = 90  # start-up, tokenization, dev evaluation
# --dynamic_padding: mean longest pair per shuffled batch of 32 over
# max_seq_length: benchmarks/results/dynamic_padding.jsonl ("share").
PADDING_FACTOR = {"MRPC": 0.62, "RTE": 1.0, "STS-B": 0.55, "CoLA": 0.36,
                  "SST-2": 0.63}


def lr_source(method):
  """The swept method whose best learning rate `method` trains at."""
  if method.startswith(("adapter",) + OTHER_ADAPTER_TYPES):
    return "adapter64"
  if method.startswith("top"):
    return "top3"
  return method


SWEPT = ("adapter64", "full", "top3", "ln")
# AdapterDrop's trunk depths k (of MiniLM's 6 blocks) beside k = 0.
DROP_METHODS = ("adapter64_drop2", "adapter64_drop3")


def method_settings(method):
  """'adapter64' / 'pfeiffer64' / 'parallel64' / 'full' / 'top3' / 'ln' ->
  run_classifier flags dict ('adapter<m>': the paper's placement;
  '<type><m>': --adapter_type=<type>, OTHER_ADAPTER_TYPES). A suffix
  '_drop<k>' leaves blocks 0..k-1 without adapters and trains from their
  cached output (--leave_out, --trunk_cache; AdapterDrop)."""
  if "_drop" in method:
    base, k = method.split("_drop")
    return dict(method_settings(base),
                leave_out=",".join(map(str, range(int(k)))), trunk_cache=None)
  if method.startswith("adapter"):
    return dict(fine_tune_mode="adapter", adapter_size=int(method[7:]))
  if method.startswith("fusion_"):
    return dict(fine_tune_mode="fusion")
  for adapter_type in OTHER_ADAPTER_TYPES:
    if method.startswith(adapter_type):
      return dict(fine_tune_mode="adapter",
                  adapter_size=int(method[len(adapter_type):]),
                  adapter_type=adapter_type)
  if method.startswith("top"):
    return dict(fine_tune_mode="top_k", top_k_layers=int(method[3:]))
  return dict(full=dict(fine_tune_mode="full"),
              ln=dict(fine_tune_mode="layer_norm"))[method]


def point(task, method, lr, seed, init=DEFAULT_INIT, epochs=None,
          eval_every=0, batching="dynamic"):
  """A run's settings. `epochs`: None = the task's (TASKS); `eval_every`:
  --eval_every_epochs (a dev curve; not in the name, it does not change
  training); `batching`: "dynamic" (--dynamic_padding) or "bucketed"
  (--bucket_by_length, "_bucketed" in the name)."""
  epochs = TASKS[task][3] if epochs is None else epochs
  name = f"{task.lower().replace('-', '')}_{method}_lr{lr}_s{seed}"
  if init != DEFAULT_INIT:
    name += f"_init{init}"
  if epochs != TASKS[task][3]:
    name += f"_ep{epochs}"
  if batching != "dynamic":
    name += f"_{batching}"
  return dict(name=name, task=task, method=method, lr=lr, seed=seed,
              init=init, epochs=epochs, eval_every=eval_every,
              batching=batching)


def epochs_of(p):
  """Training epochs of a point or a results row (older rows: TASKS')."""
  epochs = p.get("epochs", p.get("num_train_epochs"))
  return TASKS[p["task"]][3] if epochs is None else epochs


def batching_of(p):
  """"dynamic" (the protocol's --dynamic_padding; older rows) or "bucketed"
  (block 9's comparison, kept out of the sweep and the table)."""
  return p.get("batching", "dynamic")


def _sweep(tasks, methods, seeds=(1,)):
  return [point(t, m, lr, s) for t in tasks for m in methods for s in seeds
          for lr in LR_GRID[method_settings(m)["fine_tune_mode"]]]


def _at_best(tasks, methods, seeds):
  return [point(t, m, f"best:{lr_source(m)}", s) for t in tasks
          for m in methods for s in seeds]


def _probe_20ep(tasks, methods=("adapter64", "full")):
  """20 epochs at the 3-epoch best rate (of lr_source) and the next lower
  one, seed 1, a dev evaluation after every epoch: the paper's other epoch
  budget, probed."""
  return [point(t, m, f"{rate}:{lr_source(m)}", 1, epochs=20, eval_every=1)
          for t in tasks for rate in ("best", "below") for m in methods]


def _seeds_at_selection(tasks, methods=("adapter64", "full")):
  """Seeds 2-3 at the seed-1 selection over 3 and 20 epochs ("sel:<m>")."""
  return [point(t, m, f"sel:{m}", s, epochs=20, eval_every=1)
          for t in tasks for m in methods for s in (2, 3)]


def blocks():
  """[(block name, what it is for, [points])], most informative first."""
  return _paper_blocks() + _later_blocks()


def _paper_blocks():
  """Blocks 1-7: the paper's table and figures."""
  baselines = ("adapter8", "adapter256", "top1", "top3", "ln")
  unswept = ("adapter8", "adapter256", "top1")
  return [
      ("1_sweep_main", "table: adapters m=64 vs full, LR sweep, seed 1",
       _sweep(SMALL_TASKS, ("adapter64", "full"))),
      ("2_seeds_main", "table: seeds 2-3 of adapters m=64 and full at the "
       "best LR", _at_best(SMALL_TASKS, ("adapter64", "full"), (2, 3))),
      ("3_sweep_baselines", "table: top-3 and LayerNorm-only LR sweeps, "
       "adapters m=8/256 and top-1 at the m=64/top-3 best LR, seed 1",
       _sweep(SMALL_TASKS, ("top3", "ln")) +
       _at_best(SMALL_TASKS, unswept, (1,))),
      ("4_seeds_baselines", "table: seeds 2-3 of those at the best LR",
       _at_best(SMALL_TASKS, baselines, (2, 3))),
      ("5_sst2", "table: SST-2 (first 10k training rows), every method, "
       "seed 1", _sweep(("SST-2",), SWEPT) +
       _at_best(("SST-2",), unswept, (1,))),
      ("6_tradeoff", "figure: adapter sizes 2^0..2^8 at the m=64 best LR, "
       "top-k k=1..6 at the top-3 best LR, seed 1",
       _at_best(FIGURE_TASKS, [f"adapter{2 ** i}" for i in range(9)] +
                [f"top{k}" for k in range(1, 7)], (1,))),
      ("7_init", "figure: MRPC adapters m=64 at the best LR, init std "
       "1e-7..1, seed 1",
       [point("MRPC", "adapter64", "best:adapter64", 1, init)
        for init in INIT_SCALES]),
  ]


def _later_blocks():
  """Blocks 8-: longer training, seeds, adapter variants, composition."""
  return [
      ("8_probe_20ep", "20-epoch probe: CoLA and RTE, adapters m=64 and "
       "full, 20 epochs at the 3-epoch best LR and the next lower one, "
       "seed 1, dev curve per epoch",
       _probe_20ep(("CoLA", "RTE"))),
      ("9_bucketing", "bucketing vs dev score: MRPC and SST-2 (first 10k) "
       "adapters m=64 at the best LR, seeds 1-3, --bucket_by_length vs "
       "--dynamic_padding",
       [point(t, "adapter64", "best:adapter64", s, batching=b)
        for t in ("MRPC", "SST-2") for s in (1, 2, 3)
        for b in ("bucketed", "dynamic")]),
      ("10_seeds_20ep", "selection over epochs: seeds 2-3 of adapters m=64 "
       "and full on CoLA and RTE at the seed-1 selection over 3 and 20 "
       "epochs (no new run where 3 epochs win: block 2 has those seeds)",
       _seeds_at_selection(("CoLA", "RTE"))),
      ("11_20ep_mrpc_stsb", "20-epoch probe: block 8's on MRPC and STS-B "
       "(adapters m=64 and full, 20 epochs at the best LR and the next "
       "lower one, seed 1)",
       _probe_20ep(("MRPC", "STS-B"))),
      ("12_seeds_20ep_mrpc_stsb", "selection over epochs: block 10 on MRPC "
       "and STS-B",
       _seeds_at_selection(("MRPC", "STS-B"))),
      ("13_sweep_adapter8", "small adapters: m=8 at their own rates (the "
       "3-epoch sweep, seed 1; block 3 ran m=64's best): the size that "
       "keeps the goal's trained share under 2.5 %",
       _sweep(SMALL_TASKS, ("adapter8",))),
      ("14_pfeiffer", "adapter variants: Pfeiffer's placement (one adapter "
       "per block, after the feed-forward layer), m=64 at the m=64 best "
       "rate, seed 1", _at_best(SMALL_TASKS, ("pfeiffer64",), (1,))),
      ("15_parallel", "adapter variants: parallel adapters (one per block, "
       "beside the feed-forward layer, update x4), m=64 at the m=64 best "
       "rate, seed 1", _at_best(SMALL_TASKS, ("parallel64",), (1,))),
      ("16_fusion", "composition: AdapterFusion of block 14's Pfeiffer "
       "packs of the four tasks, trained on each at Pfeiffer et al.'s 5e-5, "
       "seed 1", [point(t, "fusion_pfeiffer64", FUSION_LR, 1)
                  for t in ("RTE", "MRPC", "STS-B", "CoLA")]),
      ("17_heldout_sst2", "held-out seeds: seeds 2-3 of full fine-tuning on "
       "SST-2 at its best rate (adapters' are block 9's)",
       _at_best(("SST-2",), ("full",), (2, 3))),
      ("18_pfeiffer_20ep", "under 2.5 % trained: Pfeiffer m=64 on CoLA and "
       "RTE, 20 epochs at the m=64 best rate and the one below (seed 1, dev "
       "curve), then seeds 2-3 at its selection over 3 and 20 epochs",
       _probe_20ep(("CoLA", "RTE"), ("pfeiffer64",)) +
       _seeds_at_selection(("CoLA", "RTE"), ("pfeiffer64",))),
      ("19_pfeiffer_seeds", "under 2.5 % trained, the other tasks: Pfeiffer "
       "m=64 seeds 2-3 on MRPC and STS-B, seeds 1-3 on SST-2, at the m=64 "
       "best rate (3 epochs)",
       _at_best(("MRPC", "STS-B"), ("pfeiffer64",), (2, 3)) +
       _at_best(("SST-2",), ("pfeiffer64",), (1, 2, 3))),
      ("20_adapterdrop", "the frozen trunk (AdapterDrop): adapters m=64 "
       "without adapters in blocks 0..k-1 (k = 2, 3), trained from the "
       "trunk's cached output, at the m=64 best rate (3 epochs, five tasks) "
       "and at 1e-3 for 20 epochs (CoLA, RTE: the rate of k = 0's 20-epoch "
       "runs), seed 1",
       _at_best(tuple(TASKS), DROP_METHODS, (1,)) +
       [point(t, m, "1e-3", 1, epochs=20, eval_every=1)
        for t in ("CoLA", "RTE") for m in DROP_METHODS]),
  ]


def fusion_sources(p):
  """The source points (unresolved) an AdapterFusion point fuses."""
  source = p["method"][len("fusion_"):]
  return [point(t, source, f"best:{lr_source(source)}", 1)
          for t in FUSION_SOURCES]


def command(p, lr, output_dir):
  """The run_classifier.py command line of point `p` at learning rate `lr`.

  --deterministic checkpoints the dropout generators, so a run resumed after
  a kill ends bit for bit as an unbroken one and its stored command still
  reproduces its metrics (runs stored before 2026-11-24 lack it).
  """
  data_dir, _, seq, _, _ = TASKS[p["task"]]
  batching = dict(dynamic="dynamic_padding", bucketed="bucket_by_length")[
      p.get("batching", "dynamic")]
  flags = dict(task_name=p["task"], do_train=None, do_eval=None,
               **{batching: None},
               data_dir=data_dir, output_dir=output_dir, max_seq_length=seq,
               num_train_epochs=epochs_of(p), learning_rate=lr,
               seed=p["seed"],
               # Checkpoints every 100 steps, so that a run stopped with
               # the machine resumes with little lost.
               save_checkpoints_steps=100, **method_settings(p["method"]))
  if p["init"] != DEFAULT_INIT:
    flags["adapter_init_scale"] = p["init"]
  if p.get("fuse_packs"):
    flags["fuse_packs"] = ",".join(p["fuse_packs"])
  if p.get("eval_every"):
    flags["eval_every_epochs"] = p["eval_every"]
  flags["deterministic"] = None
  args = [f"--{k}" if v is None else f"--{k}={v}" for k, v in flags.items()]
  return "python run_classifier.py " + " ".join(args)


def estimated_seconds(p):
  _, rows, seq, _, _ = TASKS[p["task"]]
  epochs = epochs_of(p)
  settings = method_settings(p["method"])
  mode = settings["fine_tune_mode"]
  if mode == "top_k":  # forward + backward through the top k of 6 blocks
    full = STEP_SECONDS_128["full"]
    step = full / 3 + (full * 2 / 3) * settings["top_k_layers"] / 6
  else:
    step = STEP_SECONDS_128[mode]
  if "_drop" in p["method"]:  # forward and backward through blocks k.. only
    step *= 1 - int(p["method"].split("_drop")[1]) / 6
  if seq == 64:
    step *= SEQ64_FACTOR
  step *= PADDING_FACTOR[p["task"]]
  evaluations = epochs // p["eval_every"] if p.get("eval_every") else 0
  # A dev pass: a forward (~1/3 of a full step) per 32 rows, unpadded batches.
  dev_pass = (DEV_ROWS[p["task"]] / 32 * STEP_SECONDS_128["full"] / 3 *
              (SEQ64_FACTOR if seq == 64 else 1))
  return ((rows // 32) * epochs * step + evaluations * dev_pass +
          RUN_OVERHEAD_SECONDS)


def unique_points():
  """[(block name, point)] in priority order, each run once.

  A seed-1 point at "best:<m>" of a swept method is dropped: the best rate
  is one of the swept ones, so that run is already in the sweep.
  """
  seen, result = set(), []
  swept = {(p["task"], p["method"], p["init"], p["epochs"])
           for _, _, points in blocks() for p in points
           if ":" not in p["lr"]}
  for block, _, points in blocks():
    for p in points:
      key = (p["task"], p["method"], p["lr"], p["seed"], p["init"],
             p["epochs"], p["batching"])
      if (p["lr"].startswith("best:") and p["seed"] == 1 and
          p["batching"] == "dynamic" and
          (p["task"], p["method"], p["init"], p["epochs"]) in swept):
        continue
      if key not in seen:
        seen.add(key)
        result.append((block, p))
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--list", action="store_true",
                      help="print every point and its command")
  args = parser.parse_args()
  per_block = {}
  for block, p in unique_points():
    per_block.setdefault(block, []).append(p)
    if args.list:
      print(f"{block}\t{p['name']}\t{command(p, p['lr'], os.path.join(OUT, p['name']))}")
  if args.list:
    return
  print("| block | what | new runs | est. hours (wall, 2 quiet cores) |")
  print("|---|---|---|---|")
  total = 0.0
  for block, what, _ in blocks():
    points = per_block.get(block, [])
    hours = sum(map(estimated_seconds, points)) / 3600
    total += hours
    print(f"| {block} | {what} | {len(points)} | {hours:.1f} |")
  print(f"| total | | {sum(map(len, per_block.values()))} | {total:.1f} |")


if __name__ == "__main__":
  main()
