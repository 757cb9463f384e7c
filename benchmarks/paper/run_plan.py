"""Runs the paper plan (plan.py) with run_classifier.py, resumably.

Each finished run appends one JSON line to the results file (name, settings,
dev metrics, wall time, the exact command, the driver's parameter report,
machine). A run whose name is already there is skipped, so a killed sweep
continues where it stopped: re-run the same command; the interrupted run
resumes from its last checkpoint (run_classifier.py's own resume). After a
run succeeds its checkpoints are deleted (full fine-tuning keeps ~0.8 GB per
run) unless --keep_checkpoints; adapter_pack.npz and eval_results.txt stay.

Several runners may share one plan (e.g. one per block): each takes a
point's `<output_dir>.lock` before training it, skips points another live
runner holds, and re-reads the results file before starting each run.

With --jobs 2, two runs train at once with one TensorFlow thread each
(1.16x the throughput of one 2-thread run on 2 cores); the thread settings
are part of each stored command, so re-running it reproduces the run.

Usage (from the repo root):
  python -m benchmarks.paper.run_plan --blocks 1,2 --jobs 2   # blocks by number
  python -m benchmarks.paper.run_plan --dry_run               # what can run now
  python -m benchmarks.paper.run_plan --jobs 2 --stop_by 17:30  # only runs
                                                  # expected to end by 17:30
"""

import argparse
import contextlib
import fcntl
import fnmatch
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

from benchmarks.paper import plan

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def load_results(path):
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


@contextlib.contextmanager
def locked(path):
  """Holds an exclusive lock beside results file `path` (runners append to
  it while reproduce.py may rewrite it)."""
  with open(path + ".lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    yield


def selection_score(row):
  keys = plan.TASKS[row["task"]][4]
  return sum(row["metrics"][f"eval_{k}"] for k in keys) / len(keys)


def at_task_epochs(row, rows):
  """The run in `rows` with `row`'s task, method, rate, seed and init at the
  task's epochs (plan.TASKS) with --dynamic_padding; None if not run."""
  same = ("task", "method", "lr", "seed", "init")
  return next((s for s in rows if plan.epochs_of(s) == plan.TASKS[
      s["task"]][3] and plan.batching_of(s) == "dynamic" and all(
          s[k] == row[k] for k in same)), None)


def grid_of(method):
  return plan.LR_GRID[plan.method_settings(method)["fine_tune_mode"]]


def best_lr(rows, task, method):
  """The seed-1 sweep's best rate of `method` on `task` (at the task's
  epochs in plan.TASKS), or None until every rate of the sweep is in `rows`.
  Ties go to the first rate of the grid."""
  grid = grid_of(method)
  scores = {r["lr"]: selection_score(r) for r in rows
            if (r["task"], r["method"], r["seed"], r["init"],
                plan.epochs_of(r), plan.batching_of(r)) ==
            (task, method, 1, plan.DEFAULT_INIT, plan.TASKS[task][3],
             "dynamic")}
  if not all(lr in scores for lr in grid):
    return None
  return max(grid, key=lambda lr: (scores[lr], -grid.index(lr)))


def rate_below(method, lr):
  """The grid rate just below `lr` (the lowest rate stays itself)."""
  grid = grid_of(method)
  return grid[max(0, grid.index(lr) - 1)]


def selection_key(row):
  """Orders seed-1 runs of one method for the selection over epochs: the
  dev score, then (ties) fewer epochs, then the grid's first rate."""
  grid = grid_of(row["method"])
  return (selection_score(row), -plan.epochs_of(row),
          -grid.index(row["lr"]) if row["lr"] in grid else -len(grid))


def selected_point(rows, task, method, long_epochs):
  """(epochs, lr) of `method` on `task` with the best seed-1 dev score among
  the task's-epochs runs and the `long_epochs` runs at the best rate of its
  lr_source and the one below (block 8's probe), or None until all of those
  are in. A method trained at another's rate (pfeiffer64) has one
  task's-epochs run, at that rate."""
  source = plan.lr_source(method)
  lr = best_lr(rows, task, source)
  if lr is None:
    return None
  short, long = plan.TASKS[task][3], {lr, rate_below(source, lr)}
  candidates = [r for r in rows
                if (r["task"], r["method"], r["seed"], r["init"],
                    plan.batching_of(r)) ==
                (task, method, 1, plan.DEFAULT_INIT, "dynamic") and
                ((plan.epochs_of(r) == short and r["lr"] in grid_of(method))
                 or (plan.epochs_of(r) == long_epochs and r["lr"] in long))]
  if {r["lr"] for r in candidates
      if plan.epochs_of(r) == long_epochs} != long:
    return None
  best = max(candidates, key=selection_key)
  return plan.epochs_of(best), best["lr"]


def resolve(p, rows):
  """Point `p` with a concrete learning rate and name, or None (waiting).

  "best:<m>": best_lr; "below:<m>": the grid rate just below it (the lowest
  rate stays itself, i.e. the same run as "best:<m>"); "sel:<m>": the
  epochs and rate of selected_point, with p's epochs as the long ones (a
  dev curve only if the long ones win)."""
  lr, epochs, eval_every = p["lr"], p.get("epochs"), p.get("eval_every", 0)
  if ":" in lr:
    rule, method = lr.split(":")
    if rule == "sel":
      chosen = selected_point(rows, p["task"], method, epochs)
      if chosen is None:
        return None
      if chosen[0] != epochs:
        eval_every = 0
      epochs, lr = chosen
    else:
      lr = best_lr(rows, p["task"], method)
      if lr is None:
        return None
      if rule == "below":
        lr = rate_below(method, lr)
  resolved = plan.point(p["task"], p["method"], lr, p["seed"], p["init"],
                        epochs, eval_every, p.get("batching", "dynamic"))
  if p["method"].startswith("fusion_"):
    return with_fusion_sources(resolved, rows)
  return resolved


def with_fusion_sources(p, rows):
  """AdapterFusion point `p` with the packs it fuses, or None while a
  source run is not in the results."""
  names = {r["name"] for r in rows}
  sources = [resolve(s, rows) for s in plan.fusion_sources(p)]
  if any(s is None or s["name"] not in names for s in sources):
    return None
  return dict(p, fuse_packs=[os.path.join(plan.OUT, s["name"],
                                          "adapter_pack.npz")
                             for s in sources])


def missing_packs(p):
  """The packs `p` fuses that are not on disk (e.g. on a new machine)."""
  return [path for path in p.get("fuse_packs", ())
          if not os.path.exists(path)]


def prepare_sst2_subset():
  """Writes the fixed SST-2 subset: header + the first SST2_ROWS rows."""
  target = os.path.join(plan.SST2_DIR, "train.tsv")
  if os.path.exists(target):
    return
  source = os.path.join(plan.DATA, "SST-2")
  os.makedirs(plan.SST2_DIR, exist_ok=True)
  with open(os.path.join(source, "train.tsv"), encoding="utf-8") as f:
    lines = [next(f) for _ in range(plan.SST2_ROWS + 1)]
  with open(target + ".tmp", "w", encoding="utf-8") as f:
    f.writelines(lines)
  os.replace(target + ".tmp", target)
  dev = os.path.join(plan.SST2_DIR, "dev.tsv")
  if not os.path.exists(dev):
    os.symlink(os.path.abspath(os.path.join(source, "dev.tsv")), dev)


def parse_parameters(log_path):
  """The driver's 'Parameters: ...' line and its numbers."""
  with open(log_path, errors="replace") as f:
    line = next((l.strip() for l in f if l.startswith("Parameters:")), "")
  numbers = [int(n.replace(",", "")) for n in
             re.findall(r"(\d[\d,]*) ", line + " ")[:3]]
  if len(numbers) < 3:
    return line, {}
  return line, dict(backbone_params=numbers[0], adapter_params=numbers[1],
                    trained_params=numbers[2])


def read_dev_curve(output_dir):
  """The run's dev_curve.jsonl (--eval_every_epochs) as a list, or None."""
  path = os.path.join(output_dir, "dev_curve.jsonl")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def read_metrics(output_dir):
  metrics = {}
  with open(os.path.join(output_dir, "eval_results.txt")) as f:
    for line in f:
      key, value = line.split(" = ")
      metrics[key] = float(value)
  return metrics


def run_threads(row):
  """TF_NUM_INTRAOP_THREADS of a row's stored command (None: TF's own)."""
  return split_command(row["command"])[0].get("TF_NUM_INTRAOP_THREADS")


def expected_seconds(p, rows, jobs, recent=6, threads=0):
  """plan.py's estimate for point `p`, scaled by the median ratio of measured
  to estimated wall time of the `recent` last finished unbroken runs in
  `rows` with the same --jobs (with `threads`: the same threads per run,
  whatever their --jobs): the estimate is per quiet 2-core step, a run here
  shares the cores, and machines differ from one day to the next."""
  def alike(r):
    return (run_threads(r) == str(threads) if threads
            else r.get("jobs") == jobs)
  unbroken = sorted((r for r in rows if not r.get("resumed") and alike(r)),
                    key=lambda r: r.get("finished", ""))[-recent:]
  ratios = sorted(r["wall_seconds"] / plan.estimated_seconds(r)
                  for r in unbroken)
  scale = ratios[len(ratios) // 2] if ratios else 1.0
  return plan.estimated_seconds(p) * scale


def _expected(p, rows, args):
  """expected_seconds under this runner's --jobs and --threads."""
  if args.threads:
    return expected_seconds(p, rows, args.jobs, threads=args.threads)
  return expected_seconds(p, rows, args.jobs)


def parse_stop_by(text, now=None):
  """'HH:MM' -> the epoch seconds of its occurrence nearest to now (local
  time): 01:30 at 23:00 is tomorrow's, 05:40 at 05:42 has just passed (and
  then no run starts, also when a loop restarts the runner)."""
  now = time.time() if now is None else now
  hour, minute = (int(x) for x in text.split(":"))
  if not (0 <= hour < 24 and 0 <= minute < 60):
    raise ValueError(text)
  day = time.localtime(now)
  stop = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hour, minute, 0,
                      0, 0, -1))
  return min((stop + d * 24 * 3600 for d in (-1, 0, 1)),
             key=lambda t: abs(t - now))


def thread_env(jobs, threads=0):
  """Environment settings of a run when `jobs` runs share the machine, or
  of one with `threads` TensorFlow threads."""
  if not threads and jobs <= 1:
    return {}
  threads = str(threads or max(1, (os.cpu_count() or 1) // jobs))
  return dict(TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS="1")


def claim(output_dir):
  """Takes `output_dir`.lock for this process; False while another live
  runner holds it (two runners must not train into one directory)."""
  lock = output_dir + ".lock"
  os.makedirs(os.path.dirname(lock) or ".", exist_ok=True)
  try:
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
  except FileExistsError:
    try:
      with open(lock) as f:
        pid = int(f.read().strip() or 0)
      os.kill(pid, 0)
      return pid == os.getpid()
    except (ValueError, ProcessLookupError):  # stale: its runner is gone
      with open(lock, "w") as f:
        f.write(str(os.getpid()))
      return True
    except PermissionError:  # alive, another user's
      return False
  with os.fdopen(fd, "w") as f:
    f.write(str(os.getpid()))
  return True


def release(output_dir):
  try:
    os.remove(output_dir + ".lock")
  except FileNotFoundError:
    pass


def split_command(command):
  """A stored command -> (environment settings, argv from run_classifier.py)."""
  words = shlex.split(command)
  driver = words.index("run_classifier.py")
  return dict(w.split("=", 1) for w in words[:driver - 1]), words[driver:]


def start_point(p, block, args):
  """Starts point `p`'s run; returns its bookkeeping dict."""
  output_dir = os.path.join(plan.OUT, p["name"])
  resumed = os.path.isdir(os.path.join(output_dir, "checkpoints"))
  # A resumed run keeps the command it started with (threads, --extra): the
  # thread count changes float summation order, and the stored command must
  # say what trained.
  command_file = output_dir + ".command"
  if resumed and os.path.exists(command_file):
    with open(command_file) as f:
      command = f.read().strip()
  else:
    command = " ".join(
        [f"{k}={v}" for k, v in
         thread_env(args.jobs, getattr(args, "threads", 0)).items()] +
        [plan.command(p, p["lr"], output_dir)])
    if args.extra:
      command += " " + args.extra
    os.makedirs(plan.OUT, exist_ok=True)
    with open(command_file, "w") as f:
      f.write(command + "\n")
  if p["task"] == "SST-2":
    prepare_sst2_subset()
  print(f"== [{block}] {p['name']}{' (resuming)' if resumed else ''}: "
        f"{command}", flush=True)
  log = open(output_dir + ".log", "a")
  env, driver_argv = split_command(command)
  process = subprocess.Popen([args.python] + driver_argv, cwd=REPO,
                             stdout=log, stderr=subprocess.STDOUT,
                             env=dict(os.environ, **env))
  return dict(p=p, block=block, command=command, output_dir=output_dir,
              resumed=resumed, log=log, process=process, start=time.time())


def finish_point(run, args):
  """Appends the finished run's JSON line; returns it (None if it failed)."""
  run["log"].close()
  p, output_dir = run["p"], run["output_dir"]
  seconds = time.time() - run["start"]
  code = run["process"].returncode
  if code != 0:
    print(f"FAILED {p['name']} (exit {code}), see {output_dir}.log",
          flush=True)
    return None
  report, counts = parse_parameters(output_dir + ".log")
  seq = plan.TASKS[p["task"]][2]
  curve = read_dev_curve(output_dir)
  row = dict(name=p["name"], block=run["block"], task=p["task"],
             method=p["method"], lr=p["lr"], seed=p["seed"], init=p["init"],
             max_seq_length=seq, num_train_epochs=plan.epochs_of(p),
             batching=p.get("batching", "dynamic"),
             metrics=read_metrics(output_dir),
             **(dict(eval_every=p["eval_every"], dev_curve=curve)
                if curve is not None else {}),
             wall_seconds=int(seconds),
             resumed=run["resumed"], jobs=args.jobs, command=run["command"],
             parameters=report, **counts, cpus=os.cpu_count(),
             machine=platform.machine(),
             finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
  with locked(args.results), open(args.results, "a") as f:
    f.write(json.dumps(row) + "\n")
  if not args.keep_checkpoints:
    shutil.rmtree(os.path.join(output_dir, "checkpoints"), ignore_errors=True)
  print(f"done {p['name']}:", json.dumps(row["metrics"]),
        f"{seconds / 60:.1f} min", flush=True)
  return row


def ready_points(rows, names_taken, wanted, tasks, names=()):
  """[(block, resolved point)] that can run now, in plan order, and the
  number still waiting for a learning-rate sweep. `names`: fnmatch patterns
  a run's name must match (any of them), or () for every name."""
  ready, waiting = [], 0
  for block, p in plan.unique_points():
    if ((wanted and block.split("_")[0] not in wanted) or
        (tasks and p["task"] not in tasks)):
      continue
    resolved = resolve(p, rows)
    if resolved is None:
      waiting += 1
    elif names and not any(fnmatch.fnmatchcase(resolved["name"], n)
                           for n in names):
      continue
    elif resolved["name"] not in names_taken:
      names_taken = names_taken | {resolved["name"]}
      ready.append((block, resolved))
  return ready, waiting


def parse_args():
  """The command line: (args, --stop_by as a unix time or None)."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--blocks", default="",
                      help="comma-separated block numbers (default: all)")
  parser.add_argument("--results", default="benchmarks/results/paper.jsonl")
  parser.add_argument("--python", default=".venv/bin/python")
  parser.add_argument("--max_runs", type=int, default=0,
                      help="start at most this many runs (0: no limit)")
  parser.add_argument("--jobs", type=int, default=1,
                      help="runs at once, each with cores/jobs TensorFlow "
                      "threads (2 on 2 cores: 1.16x the throughput, "
                      "benchmarks/results/parallel_runs.jsonl)")
  parser.add_argument("--threads", type=int, default=0,
                      help="TensorFlow threads per run (default: cores/jobs; "
                      "with --jobs 1, TensorFlow's own choice); e.g. "
                      "--jobs 1 --threads 1 leaves a core to other work")
  parser.add_argument("--tasks", default="",
                      help="comma-separated tasks (default: all)")
  parser.add_argument("--names", default="",
                      help="comma-separated run names or fnmatch patterns, "
                      "e.g. 'rte_*_lr1e-3_s1_ep20' (default: every run of "
                      "the chosen blocks and tasks)")
  parser.add_argument("--extra", default="",
                      help="flags appended to every command (smoke tests "
                      "only, e.g. '--num_train_epochs=0.05'; the last value "
                      "of a repeated flag wins)")
  parser.add_argument("--stop_by", default="",
                      help="HH:MM (local time): start only runs expected to "
                      "end by then (expected_seconds), e.g. before the "
                      "machine goes away; later points wait for the next "
                      "start")
  parser.add_argument("--dry_run", action="store_true")
  parser.add_argument("--keep_checkpoints", action="store_true")
  args = parser.parse_args()
  args.names = tuple(n.strip() for n in args.names.split(",") if n.strip())
  if args.jobs < 1:
    parser.error(f"--jobs={args.jobs}: need at least 1 run at a time")
  if args.threads < 0:
    parser.error(f"--threads={args.threads}: give 1 or more, or 0 for "
                 "cores/jobs")
  try:
    deadline = parse_stop_by(args.stop_by) if args.stop_by else None
  except ValueError:
    parser.error(f"--stop_by={args.stop_by}: give a time of day as HH:MM")
  return args, deadline


def dry_run(args, wanted, tasks):
  """Prints the runs that would start now, each with its expected time."""
  rows = load_results(args.results)
  ready, waiting = ready_points(rows, {r["name"] for r in rows}, wanted,
                                tasks, args.names)
  for block, p in ready[:args.max_runs or None]:
    minutes = _expected(p, rows, args) / 60
    print(f"would run [{block}] (~{minutes:.0f} min) "
          f"{plan.command(p, p['lr'], os.path.join(plan.OUT, p['name']))}")
  print(f"{len(ready)} run(s) ready; {waiting} waiting for their "
        f"learning-rate sweep; results in {args.results}")


def run_points(args, wanted, tasks, deadline):
  """Runs the ready points, --jobs at a time, until none is left."""
  # passed_over: runs that failed here or that another runner holds; this
  # runner does not try them again.
  running, started, passed_over = [], 0, set()
  # Killing the runner stops its runs too (they resume on the next start).
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  try:
    while True:
      # Re-read: another runner may have finished (or be training) points.
      rows = load_results(args.results)
      taken = ({r["name"] for r in rows} | passed_over |
               {r["p"]["name"] for r in running})
      ready, waiting = ready_points(rows, taken, wanted, tasks, args.names)
      if deadline:  # the first ready points that can end in time
        ready = [(b, p) for b, p in ready if
                 time.time() + _expected(p, rows, args) <= deadline]
      while (ready and len(running) < args.jobs and
             not (args.max_runs and started >= args.max_runs)):
        block, p = ready.pop(0)
        output_dir = os.path.join(plan.OUT, p["name"])
        missing = missing_packs(p)
        if missing:
          print(f"skipping {p['name']}: no {missing[0]}; re-make it with "
                "python -m benchmarks.paper.reproduce "
                f"{os.path.basename(os.path.dirname(missing[0]))} "
                f"--out {plan.OUT}", flush=True)
          passed_over.add(p["name"])
          continue
        if not claim(output_dir):
          print(f"skipping {p['name']}: another runner holds "
                f"{output_dir}.lock", flush=True)
          passed_over.add(p["name"])
          continue
        running.append(start_point(p, block, args))
        started += 1
      if not running:
        break
      pid, status = os.wait()
      run = next(r for r in running if r["process"].pid == pid)
      run["process"].returncode = os.waitstatus_to_exitcode(status)
      running.remove(run)
      if not finish_point(run, args):
        passed_over.add(run["p"]["name"])
      release(run["output_dir"])
  finally:
    for run in running:
      run["process"].terminate()
      run["process"].wait()
      release(run["output_dir"])
  print(f"{started} run(s) attempted; {waiting} waiting for their "
        f"learning-rate sweep; results in {args.results}"
        + (f"; only runs expected to end by {args.stop_by} were started"
           if deadline else ""))


def main():
  args, deadline = parse_args()
  os.chdir(REPO)
  wanted = {b.strip() for b in args.blocks.split(",") if b.strip()}
  tasks = {t.strip() for t in args.tasks.split(",") if t.strip()}
  os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
  if args.dry_run:
    dry_run(args, wanted, tasks)
  else:
    run_points(args, wanted, tasks, deadline)


if __name__ == "__main__":
  main()
