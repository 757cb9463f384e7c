"""Peak RSS of training per tuning mode, repeated in fresh processes, to tell
a real difference between modes from allocator noise (speed.py measures each
mode once).

Each (round, mode) is one child process, run alone, modes alternating. A
child builds the classifier (speed.build: MiniLM, batch of real MRPC pairs),
then runs `--steps` training steps through `model.fit`, reading the process's
high-water mark (VmHWM) after the build and after every step. Appends one
JSON line to the results file. `--env NAME=VALUE` sets an environment
variable in the children (e.g. MALLOC_ARENA_MAX=2, to test the allocator);
`--modes adapter,full` measures those modes only.

Usage: python -m benchmarks.peak_memory                  # 3 rounds, XLA off
       python -m benchmarks.peak_memory --rounds 1 --steps 1 --batch 4 \
         --seq 32 --results /tmp/peak.jsonl             # smoke test
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from benchmarks import speed


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--xla", choices=("0", "1"), default="0")
  parser.add_argument("--env", action="append", default=[],
                      help="NAME=VALUE for the children (repeatable)")
  parser.add_argument("--results", default=os.path.join(
      speed.REPO, "benchmarks/results/peak_memory.jsonl"))
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  speed.add_modes_flag(parser)
  return speed.check_modes(parser, parser.parse_args(argv))


def child(args):
  kind = f"train:{args.child}:{args.xla}"
  inputs, labels = speed.real_batch(args.batch, args.seq)
  model = speed.build(kind, args)
  built = speed._peak_rss_mb()  # pylint: disable=protected-access
  step = speed.step_fn(kind, model, inputs, labels)
  per_step = []
  for _ in range(args.steps):
    step()
    per_step.append(round(speed._peak_rss_mb()))  # pylint: disable=protected-access
  print(json.dumps(dict(after_build_mb=round(built), after_step_mb=per_step)))


def run_child(mode, args, env):
  command = [sys.executable, "-m", "benchmarks.peak_memory", "--child", mode,
             "--steps", str(args.steps), "--batch", str(args.batch), "--seq",
             str(args.seq), "--adapter_size", str(args.adapter_size),
             "--xla", args.xla]
  out = subprocess.run(command, cwd=speed.REPO, capture_output=True,
                       text=True, env=dict(os.environ, **env), check=False)
  if out.returncode:
    sys.exit(f"peak_memory.py: the {mode} child failed: "
             f"{(out.stderr.strip().splitlines() or ['?'])[-1]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
  args = parse_args(argv)
  if args.child:
    return child(args)
  env = dict(e.split("=", 1) for e in args.env)
  started = time.time()
  runs = {m: [] for m in args.modes}
  for r in range(args.rounds):
    for mode in args.modes:
      runs[mode].append(run_child(mode, args, env))
      print(f"round {r + 1} {mode}: {runs[mode][-1]}", flush=True)
  peaks = {m: [max(x["after_step_mb"]) for x in runs[m]] for m in args.modes}
  result = dict(
      benchmark="peak_memory", batch=args.batch, max_seq_length=args.seq,
      adapter_size=args.adapter_size, xla=args.xla == "1", steps=args.steps,
      rounds=args.rounds, env=env, runs=runs,
      median_peak_mb={m: statistics.median(p) for m, p in peaks.items()},
      range_peak_mb={m: [min(p), max(p)] for m, p in peaks.items()},
      wall_seconds=int(time.time() - started), cpus=os.cpu_count(),
      machine=platform.machine(), load_average=os.getloadavg(),
      command=" ".join(["python", "-m", "benchmarks.peak_memory"] +
                       (argv if argv is not None else sys.argv[1:])),
      finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
  with open(args.results, "a") as f:
    f.write(json.dumps(result) + "\n")
  print(json.dumps({k: result[k] for k in ("median_peak_mb",
                                           "range_peak_mb")}))


if __name__ == "__main__":
  main()
