"""keras_adapters vs AdapterHub, each at its best batching, in one command.

Trains every --settings entry on every task, with the same MiniLM weights,
data files, max_seq_length, batch size, epochs, learning rate, adapter size,
adapter variant (houlsby_gelu_ln: exactly our trained parameters) and seed:

  ours:static          run_classifier.py (in .venv), batches padded to
                       max_seq_length
  ours:dynamic         --dynamic_padding: each batch cut to its longest
                       example (rounded up to 8)
  ours:bucketed        --bucket_by_length: length buckets (4 equal widths of
                       max_seq_length), each batch cut to its bucket
  ours:bucketed/W      the same with buckets W wordpieces wide
                       (--bucket_boundaries=W,2W,...,max_seq_length)
  ours:grouped         --group_by_length: sorted groups of 50 batches, each
                       batch cut to its longest example (as hf:group_by_length)
  ours:<any>+xla       the same with --jit_compile
  hf:static            hf_train.py (AdapterHub, in .venv-adapterhub),
                       batches padded to max_seq_length
  hf:dynamic           transformers' DataCollatorWithPadding
  hf:group_by_length   the Trainer's LengthGroupedSampler + dynamic padding

AdapterDrop, on either side (after the batching, in any order with +xla):
  ours:<any>+dropK     --leave_out=0,...,K-1 --trunk_cache: blocks 0..K-1
                       without adapters (their LayerNorms and, with block
                       0, the embeddings' frozen), computed once before
                       training (without dropout); e.g. ours:grouped+drop3
  ours:<any>+dropK-nocache  the same leave_out without --trunk_cache
  hf:<any>+dropK       hf_train.py --leave_out=0,...,K-1 (the adapter
                       config's leave_out, the same LayerNorms frozen): the
                       same trained parameters; e.g. hf:group_by_length+drop3
Every row records its leave_out (and trunk_cache); the table's ratio lines
compare ours' best with theirs' best at the same leave_out, and ours' best
with a leave_out against theirs' best at full depth. Ours' trunk cache is
computed before training starts: it is outside the epoch times (so outside
both useful tokens/s figures) but inside the time to the end of training,
and the row gives its seconds (trunk_cache_seconds, from the driver's
progress bar).

Tasks take their data and max_seq_length from benchmarks/paper/plan.py
(MRPC at 128; SST-2 = its first 10,000 training rows at 64, written to
runs/paper/data/ if missing). Each round trains every setting on every
task, ours and theirs alternating, the order reversed from one task/round to
the next, so machine drift hits both libraries alike.

Per run: useful (non-pad) training tokens/s, counted over the examples
actually trained on (ours: run_classifier.py --report_train_tokens; theirs:
the attention_mask sums of its batches), over the epochs after the first
(which holds tracing, XLA compilation and tokenization caching) and over all
of training; the wall time from process start to the end of training; the
dev score (MRPC: mean of accuracy and F1); the peak RSS. One JSON line per
run goes to --results (benchmarks/results/adapterhub_best.jsonl; the older
static-only comparison stays in adapterhub.jsonl). Then the table: every run,
the median of each setting, and per task ours' best setting / theirs' best
(by median useful tokens/s after epoch 1). Needs only the standard library:
run it with either venv.

Usage (from the repo root; setup: bash benchmarks/adapterhub/setup.sh):
  .venv-adapterhub/bin/python -m benchmarks.adapterhub.compare --table_only

The race (docs/RESULTS.md section 2), on the machine alone:
  .venv-adapterhub/bin/python -m benchmarks.adapterhub.compare \\
      --tasks MRPC,SST-2 --rounds 1
About 4.5 h on 2 idle cores (2 threads a run). Estimated per run (minutes,
3 epochs, start-up and dev evaluation included) from the fed (padded) tokens
of each setting and the 2-thread rates measured before (section 2's static
runs, benchmarks/batching.py); the smoke test's 2-step runs are all warm-up
(tracing, XLA compilation) and give no rate:
            ours: static dynamic bucketed bucketed/8 bucketed+xla
  MRPC             26     16      12        11          13
  SST-2            30     20      12        10          12
            hf:   static dynamic group_by_length
  MRPC             29     15      10
  SST-2            30     20       8
Without ours:static and hf:static (the padded baselines) about 2.7 h. The
run of 2026-11-30 (bucketed/8 with and without XLA, hf:group_by_length,
hf:dynamic) took 69 min: 4.5-12 min a run to the end of training. The
smoke test, one setting a call (1-3.5 min each; results kept out of the
real file):
  python -m benchmarks.adapterhub.compare --tasks MRPC --threads 1 \\
      --num_train_epochs=0.02 --settings ours:static \\
      --out /tmp/race_smoke --results /tmp/race_smoke.jsonl

The AdapterDrop race (leave_out 0,1,2: ours with the trunk cache vs
AdapterHub at the same leave_out and at full depth), on the machine alone:
  .venv-adapterhub/bin/python -m benchmarks.adapterhub.compare \\
      --tasks MRPC,SST-2 --rounds 1 --settings ours:grouped+drop3,\\
hf:group_by_length+drop3,hf:group_by_length,ours:grouped
Its smoke test (MRPC, 5 steps, 1 thread: about 1.5 min for
ours:grouped+drop3, of which 40 s are the cache's pre-pass, 25 s for
hf:group_by_length+drop3); both train 450,818 parameters (753,794 at full
depth):
  python -m benchmarks.adapterhub.compare --tasks MRPC --threads 1 \\
      --num_train_epochs=0.05 --settings ours:grouped+drop3,\\
hf:group_by_length+drop3 --out /tmp/race_smoke --results /tmp/race_smoke.jsonl
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEFAULT_SETTINGS = ("ours:static,ours:dynamic,ours:bucketed,ours:bucketed/8,"
                    "ours:bucketed+xla,hf:static,hf:dynamic,"
                    "hf:group_by_length")
OURS_FLAGS = {"static": [], "dynamic": ["--dynamic_padding"],
              "bucketed": ["--bucket_by_length"],
              "grouped": ["--group_by_length"]}
HF_PADDING = ("static", "dynamic", "group_by_length")


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", default="MRPC,SST-2")
  parser.add_argument("--settings", default=DEFAULT_SETTINGS,
                      help="comma-separated ours:<static|dynamic|bucketed|"
                      "bucketed/W|grouped>[+xla][+dropK[-nocache]] and "
                      "hf:<static|dynamic|group_by_length>[+dropK]")
  parser.add_argument("--rounds", type=int, default=1)
  parser.add_argument("--variant", default="houlsby_gelu_ln",
                      choices=["houlsby", "houlsby_gelu_ln"])
  parser.add_argument("--data_dir", default="../shared/data/glue_data")
  parser.add_argument("--max_seq_length", type=int, default=0,
                      help="0: the task's, as in benchmarks/paper/plan.py")
  parser.add_argument("--train_batch_size", type=int, default=32)
  parser.add_argument("--num_train_epochs", type=float, default=3.0)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--seed", type=int, default=42)
  parser.add_argument("--threads", type=int, default=0,
                      help="threads per run (0: each library's default, "
                      "one per core)")
  parser.add_argument("--ours_python", default=".venv/bin/python")
  parser.add_argument("--theirs_python", default=".venv-adapterhub/bin/python")
  parser.add_argument("--out", default="runs/adapterhub_best")
  parser.add_argument("--results",
                      default="benchmarks/results/adapterhub_best.jsonl")
  parser.add_argument("--table_only", action="store_true",
                      help="print the table of the newest session of each "
                      "task and setting in the results file")
  return parser.parse_args()


def parse_setting(setting):
  """dict(library, batching, xla, leave_out, trunk_cache) of a setting such
  as 'ours:grouped+xla+drop3' (leave_out [0, 1, 2] with the trunk cache),
  or None if it is not one."""
  library, _, rest = setting.partition(":")
  batching, *extras = rest.split("+")
  parsed = dict(library=library, batching=batching, xla=False, leave_out=[],
                trunk_cache=False)
  buckets = batching.removeprefix("bucketed/")
  if not (library == "ours" and (batching in OURS_FLAGS or buckets.isdigit()
                                 and int(buckets) > 0)
          or library == "hf" and batching in HF_PADDING):
    return None
  if len(set(extras)) != len(extras):
    return None
  for extra in extras:
    drop = re.fullmatch(r"drop([1-9]\d*)(-nocache)?", extra)
    if extra == "xla" and library == "ours":
      parsed["xla"] = True
    elif drop and not parsed["leave_out"] and (library == "ours" or
                                               not drop[2]):
      parsed["leave_out"] = list(range(int(drop[1])))
      parsed["trunk_cache"] = library == "ours" and not drop[2]
    else:
      return None
  return parsed


def parse_settings(text):
  """['ours:bucketed+xla', ...], checked."""
  settings = [s.strip() for s in text.split(",") if s.strip()]
  for setting in settings:
    if parse_setting(setting) is None:
      sys.exit(f"compare.py: error: unknown setting {setting!r}; give "
               "ours:<static|dynamic|bucketed|bucketed/W|grouped>[+xla]"
               "[+dropK[-nocache]] or hf:<static|dynamic|group_by_length>"
               "[+dropK]")
  return settings


def interleaved(settings, reverse):
  """Ours and theirs alternating (the order reversed if `reverse`)."""
  ours = [s for s in settings if s.startswith("ours:")]
  theirs = [s for s in settings if s.startswith("hf:")]
  order = []
  for i in range(max(len(ours), len(theirs))):
    order += ours[i:i + 1] + theirs[i:i + 1]
  return order[::-1] if reverse else order


def task_data(task, args):
  """(data dir, max_seq_length, score keys) of benchmarks/paper/plan.py's
  task; writes the SST-2 subset if it is missing."""
  os.environ["DATA"] = args.data_dir  # read by plan.py when imported
  from benchmarks.paper import plan  # pylint: disable=g-import-not-at-top
  from benchmarks.paper import run_plan  # pylint: disable=g-import-not-at-top
  if task not in plan.TASKS:
    sys.exit(f"compare.py: error: unknown task {task}; give one of "
             f"{', '.join(plan.TASKS)}")
  if task == "SST-2":
    run_plan.prepare_sst2_subset()
  data_dir, _, seq, _, keys = plan.TASKS[task]
  return data_dir, args.max_seq_length or seq, keys


def run(command, log_path, env=None):
  """Runs `command`; returns (exit code, start unix time, seconds, peak RSS
  in MB)."""
  start = time.time()
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=REPO, stdout=log,
                               stderr=subprocess.STDOUT,
                               env=dict(os.environ, **(env or {})))
    _, status, usage = os.wait4(process.pid, 0)
  return (os.waitstatus_to_exitcode(status), start, time.time() - start,
          round(usage.ru_maxrss / 1024))


def figures(epochs, start, train_end_unix):
  """Useful tokens/s after epoch 1 and over all of training, padding share,
  time to the end of training, from per-epoch (seconds, steps, useful
  tokens, fed tokens)."""
  steady = epochs[1:] if len(epochs) > 1 else epochs
  rate = lambda rows: sum(r[2] for r in rows) / max(sum(r[0] for r in rows),
                                                    1e-9)
  return dict(
      epoch_seconds=[round(r[0], 2) for r in epochs],
      epoch_steps=[r[1] for r in epochs],
      epoch_useful_tokens=[r[2] for r in epochs],
      epoch_fed_tokens=[r[3] for r in epochs],
      steps=sum(r[1] for r in epochs),
      useful_tokens_per_s=round(rate(steady), 1),
      useful_tokens_per_s_all=round(rate(epochs), 1),
      padding_share=round(1 - sum(r[2] for r in epochs) /
                          max(sum(r[3] for r in epochs), 1), 4),
      to_train_end_seconds=round(train_end_unix - start, 1))


def batching_flags(batching, seq):
  """run_classifier.py's flags for static, dynamic, bucketed, bucketed/W."""
  if not batching.startswith("bucketed/"):
    return OURS_FLAGS[batching]
  width = int(batching.split("/")[1])
  boundaries = list(range(width, seq, width)) + [seq]
  return ["--bucket_by_length",
          "--bucket_boundaries=" + ",".join(map(str, boundaries))]


def task_flags(task, data_dir, seq, args):
  return [f"--task_name={task}", f"--data_dir={data_dir}",
          f"--max_seq_length={seq}",
          f"--train_batch_size={args.train_batch_size}",
          f"--num_train_epochs={args.num_train_epochs}",
          f"--learning_rate={args.learning_rate}",
          f"--adapter_size={args.adapter_size}", f"--seed={args.seed}"]


def leave_out_flags(parsed):
  """run_classifier.py's / hf_train.py's --leave_out (and --trunk_cache)."""
  if not parsed["leave_out"]:
    return []
  return ([f"--leave_out={','.join(map(str, parsed['leave_out']))}"] +
          (["--trunk_cache"] if parsed["trunk_cache"] else []))


def trunk_cache_seconds(log):
  """Seconds the driver spent computing the trunk cache (the final line of
  its progress bar: "N/N [===...] - 12s 3ms/example"), or None."""
  if "Trunk cache:" not in log:
    return None
  bar = re.findall(r"(\d+)/\1 \[=+\] - (?:(\d+)m )?(\d+)s \S+/example",
                   log.split("Trunk cache:", 1)[1])
  return int(bar[-1][1] or 0) * 60 + int(bar[-1][2]) if bar else None


def ours(task, setting, args, common):
  parsed = parse_setting(setting)
  output_dir = os.path.join(args.out, f"{task.lower()}_{slug(setting)}")
  shutil.rmtree(output_dir, ignore_errors=True)  # time a fresh run
  flags = (task_flags(task, common["data_dir"], common["max_seq_length"],
                      args) + ["--do_train", "--do_eval",
                               f"--output_dir={output_dir}",
                               "--report_train_tokens"] +
           batching_flags(parsed["batching"], common["max_seq_length"]) +
           (["--jit_compile"] if parsed["xla"] else []) +
           leave_out_flags(parsed))
  env = dict(TF_NUM_INTRAOP_THREADS=str(args.threads),
             TF_NUM_INTEROP_THREADS="1") if args.threads else {}
  code, start, seconds, rss = run([args.ours_python, "run_classifier.py"] +
                                  flags, output_dir + ".log", env)
  row = dict(common, setting=setting, library="keras_adapters",
             leave_out=parsed["leave_out"], trunk_cache=parsed["trunk_cache"],
             command=" ".join([f"{k}={v}" for k, v in env.items()] +
                              ["python run_classifier.py"] + flags))
  log = open(output_dir + ".log", errors="replace").read()
  ended = re.search(r"training ended at unix time ([\d.]+)", log)
  if code or not ended:
    return dict(row, error=f"exit {code}, see {output_dir}.log")
  with open(os.path.join(output_dir, "eval_results.txt")) as f:
    values = dict(line.strip().split(" = ") for line in f)
  epochs = [(float(s), int(n), int(u), int(f)) for n, s, u, f in re.findall(
      r"^Train tokens: epoch \d+: (\d+) steps in ([\d.]+) s, (\d+) non-pad "
      r"of (\d+) tokens", log, re.M)]
  trained = re.search(r"trained per task ([\d,]+)", log)
  return dict(
      row, metrics={k[5:]: float(v) for k, v in values.items()
                    if k.startswith("eval_")},
      **figures(epochs, start, float(ended[1])),
      trained_params=int(trained[1].replace(",", "")) if trained else None,
      trunk_cache_seconds=trunk_cache_seconds(log),
      peak_rss_mb=rss, wall_seconds=round(seconds))


def theirs(task, setting, args, common):
  parsed = parse_setting(setting)
  log_path = os.path.join(args.out, f"{task.lower()}_{slug(setting)}.log")
  flags = task_flags(task, common["data_dir"], common["max_seq_length"],
                     args) + [f"--variant={args.variant}",
                              f"--padding={parsed['batching']}"] + (
                                  leave_out_flags(parsed))
  if args.threads:
    flags.append(f"--num_threads={args.threads}")
  env = dict(OMP_NUM_THREADS=str(args.threads)) if args.threads else {}
  code, start, seconds, rss = run(
      [args.theirs_python, "-m", "benchmarks.adapterhub.hf_train"] + flags,
      log_path, env)
  row = dict(common, setting=setting, variant=args.variant,
             leave_out=parsed["leave_out"], trunk_cache=False,
             command=" ".join([f"{k}={v}" for k, v in env.items()] + [
                 "python -m benchmarks.adapterhub.hf_train"] + flags))
  with open(log_path, errors="replace") as f:
    reports = [l for l in f if l.startswith("{")]
  if code or not reports:
    return dict(row, library="adapters", error=f"exit {code}, see {log_path}")
  report = json.loads(reports[-1])
  epochs = list(zip(report["epoch_seconds"], report["epoch_steps"],
                    report["epoch_useful_tokens"], report["epoch_fed_tokens"]))
  return dict(
      row, library=f"adapters {report['adapters']} (torch "
      f"{report['torch']})", metrics=report["metrics"],
      **figures(epochs, start, report["train_end_unix"]),
      trained_params=report["trained_params"], peak_rss_mb=rss,
      wall_seconds=round(seconds))


def slug(setting):
  return re.sub(r"[:+/]", "_", setting)


def score(row):
  keys = row.get("score_keys") or ["accuracy"]
  return sum(row["metrics"][k] for k in keys) / len(keys)


def median(values):
  values = sorted(values)
  middle = len(values) // 2
  return (values[middle] if len(values) % 2 else
          (values[middle - 1] + values[middle]) / 2)


def run_table(rows):
  """One line per run."""
  lines = ["| task | round | setting | dev score | useful tokens/s after "
           "epoch 1 | useful tokens/s, all training | padding | fed (padded) "
           "tokens/s after epoch 1 | to end of training (min) | peak RSS "
           "(MB) |", "|---" * 10 + "|"]
  for r in rows:
    if "error" in r:
      lines.append(f"| {r['task']} | {r['round']} | {r['setting']} | "
                   f"{r['error']} | | | | | | |")
      continue
    metrics = ", ".join(f"{k} {100 * v:.1f}" for k, v in
                        sorted(r["metrics"].items()) if k != "mse")
    steady = slice(1 if len(r["epoch_seconds"]) > 1 else 0, None)
    fed_rate = (sum(r["epoch_fed_tokens"][steady]) /
                max(sum(r["epoch_seconds"][steady]), 1e-9))
    lines.append(
        f"| {r['task']} | {r['round']} | {r['setting']} | {metrics} | "
        f"{r['useful_tokens_per_s']:,.0f} | "
        f"{r['useful_tokens_per_s_all']:,.0f} | "
        f"{100 * r['padding_share']:.0f} % | {fed_rate:,.0f} | "
        f"{r['to_train_end_seconds'] / 60:.1f} | {r['peak_rss_mb']:,} |")
  return lines


def setting_summary(runs):
  """The medians of one task's and setting's runs."""
  pick = lambda key: median([r[key] for r in runs])
  return dict(setting=runs[0]["setting"], runs=len(runs),
              leave_out=parse_setting(runs[0]["setting"])["leave_out"],
              rate=pick("useful_tokens_per_s"),
              rate_all=pick("useful_tokens_per_s_all"),
              score=median([score(r) for r in runs]),
              to_end=pick("to_train_end_seconds"), rss=pick("peak_rss_mb"))


def summaries(task, rows):
  ok = [r for r in rows if r["task"] == task and "error" not in r]
  return [setting_summary([r for r in ok if r["setting"] == s])
          for s in dict.fromkeys(r["setting"] for r in ok)]


def ratio_lines(task, sums):
  """Ours' best setting / theirs' best, by median useful tokens/s, at each
  leave_out both libraries ran (full depth: as before leave_out existed);
  then ours' best with each leave_out / theirs' best at full depth."""
  best = {}
  for s in sums:
    key = (s["setting"].split(":")[0], tuple(s["leave_out"]))
    if key not in best or s["rate"] > best[key]["rate"]:
      best[key] = s
  depths = sorted({k[1] for k in best}, key=lambda l: (len(l), l))
  lines = [ratio_line(task + (f", leave_out {list(l)}" if l else ""),
                      best["ours", l], best["hf", l])
           for l in depths if ("ours", l) in best and ("hf", l) in best]
  return lines + [
      ratio_line(f"{task}, ours at leave_out {list(l)} vs theirs at full "
                 "depth", best["ours", l], best["hf", ()], goal=False)
      for l in depths if l and ("ours", l) in best and ("hf", ()) in best
  ] + own_ratio_lines(task, sums)


def own_ratio_lines(task, sums):
  """Ours against ours: with leave_out, the trunk cache / no cache, and the
  cached setting / full depth (same batching), by median useful tokens/s."""
  ours = {s["setting"]: s for s in sums if s["setting"].startswith("ours:")}
  lines = []
  for name, s in ours.items():
    if "+drop" not in name or name.endswith("-nocache"):
      continue
    base = name.split("+drop")[0]
    for other, what in ((f"{name}-nocache", "the trunk cache / no cache"),
                        (base, "leave_out with the cache / full depth")):
      if other in ours:
        lines.append(
            f"* {task}, ours, {what}: {name} / {other}: useful tokens/s "
            f"{s['rate'] / ours[other]['rate']:.2f}x, dev score "
            f"{100 * (s['score'] - ours[other]['score']):+.1f} points, time "
            f"to end of training {s['to_end'] / ours[other]['to_end']:.2f}x")
  return lines


def ratio_line(label, a, b, goal=True):
  """One ratio line: setting summaries `a` (ours) / `b` (theirs)."""
  return (f"* {label}, ours best ({a['setting']}) / theirs best "
          f"({b['setting']}): useful tokens/s {a['rate'] / b['rate']:.2f}x "
          f"({'goal >= 1.3x; ' if goal else ''}over all training "
          f"{a['rate_all'] / b['rate_all']:.2f}x), dev score "
          f"{100 * (a['score'] - b['score']):+.1f} points"
          f"{' (goal >= -0.5)' if goal else ''}, "
          f"time to end of training {a['to_end'] / b['to_end']:.2f}x, peak "
          f"RSS {a['rss'] / b['rss']:.2f}x")


def table(rows):
  """Every run, each setting's medians, the ratios of the best ones."""
  tasks = list(dict.fromkeys(r["task"] for r in rows))
  lines = run_table(rows) + [
      "", "| task | setting | runs | useful tokens/s after epoch 1 | useful "
      "tokens/s, all training | dev score | to end of training (min) | "
      "peak RSS (MB) |", "|---" * 8 + "|"]
  for task in tasks:
    lines += [f"| {task} | {s['setting']} | {s['runs']} | {s['rate']:,.0f} "
              f"| {s['rate_all']:,.0f} | {100 * s['score']:.1f} | "
              f"{s['to_end'] / 60:.1f} | {s['rss']:,.0f} |"
              for s in summaries(task, rows)]
  lines.append("")
  for task in tasks:
    lines += ratio_lines(task, summaries(task, rows))
  return "\n".join(lines)


def newest(rows):
  """Per task and setting, the runs of the newest session that has it."""
  latest = {}
  for r in rows:
    key = (r["task"], r["setting"])
    latest[key] = max(latest.get(key, ""), r["session"])
  return [r for r in rows if r["session"] == latest[(r["task"],
                                                     r["setting"])]]


def race(args, settings, session):
  """Every round, task and setting, interleaved; appends each run's line."""
  rows, turn = [], 0
  for round_ in range(1, args.rounds + 1):
    for task in (t.strip() for t in args.tasks.split(",") if t.strip()):
      data_dir, seq, keys = task_data(task, args)
      common = dict(session=session, round=round_, task=task,
                    data_dir=data_dir, max_seq_length=seq,
                    score_keys=list(keys),
                    train_batch_size=args.train_batch_size,
                    num_train_epochs=args.num_train_epochs,
                    learning_rate=args.learning_rate,
                    adapter_size=args.adapter_size, seed=args.seed,
                    threads=args.threads or os.cpu_count(),
                    cpus=os.cpu_count(), machine=platform.machine())
      for setting in interleaved(settings, turn % 2):
        side = ours if setting.startswith("ours:") else theirs
        row = dict(side(task, setting, args, common),
                   loadavg=os.getloadavg(),
                   finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        rows.append(row)
        with open(args.results, "a") as f:
          f.write(json.dumps(row) + "\n")
        print(json.dumps({k: row.get(k) for k in (
            "task", "round", "setting", "metrics", "useful_tokens_per_s",
            "useful_tokens_per_s_all", "to_train_end_seconds",
            "peak_rss_mb", "error")}), flush=True)
      turn += 1
  return rows


def main():
  args = parse_args()
  os.chdir(REPO)
  if args.table_only:
    with open(args.results) as f:
      rows = newest([json.loads(l) for l in f if l.strip()])
    print(f"Results file: {args.results}, the newest session of each task "
          f"and setting ({', '.join(sorted({r['session'] for r in rows}))})"
          "\n")
    print(table(rows))
    return
  settings = parse_settings(args.settings)
  session = time.strftime("%Y-%m-%dT%H:%M:%S")
  os.makedirs(args.out, exist_ok=True)
  os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
  rows = race(args, settings, session)
  print()
  print(table(rows))


if __name__ == "__main__":
  main()
