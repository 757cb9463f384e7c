"""Appends one JSON line (name, metrics, wall time, command, machine) to a
results file, from a finished run_classifier.py output_dir (glue_core.sh
calls it after each run).

Usage: python -m benchmarks.append_result RESULTS NAME OUTPUT_DIR SECONDS \
         COMMAND
"""

import argparse
import json
import os
import platform


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("results", help="the .jsonl to append to")
  parser.add_argument("name", help="the run's name")
  parser.add_argument("output_dir", help="the run's --output_dir (its log "
                      "is OUTPUT_DIR.log)")
  parser.add_argument("seconds", help="the run's wall time in seconds")
  parser.add_argument("command", help="the run's command line")
  args = parser.parse_args()
  metrics = {}
  with open(os.path.join(args.output_dir, "eval_results.txt")) as f:
    for line in f:
      key, value = line.split(" = ")
      metrics[key] = float(value)
  log = os.path.join(args.output_dir + ".log")
  report = ""
  if os.path.exists(log):
    report = next((l.strip() for l in open(log)
                   if l.startswith("Parameters:")), "")
  line = dict(name=args.name, metrics=metrics,
              wall_seconds=int(args.seconds), command=args.command,
              parameters=report, cpus=os.cpu_count(),
              machine=platform.machine())
  with open(args.results, "a") as f:
    f.write(json.dumps(line) + "\n")
  print(json.dumps(line))


if __name__ == "__main__":
  main()
