"""Appends one JSON line (name, metrics, wall time, command, machine) to a
results file, from a finished run_classifier.py output_dir."""

import json
import os
import platform
import sys

results, name, output_dir, seconds, command = sys.argv[1:6]
metrics = {}
with open(os.path.join(output_dir, "eval_results.txt")) as f:
  for line in f:
    key, value = line.split(" = ")
    metrics[key] = float(value)
log = os.path.join(output_dir + ".log")
report = ""
if os.path.exists(log):
  report = next((l.strip() for l in open(log) if l.startswith("Parameters:")), "")
line = dict(name=name, metrics=metrics, wall_seconds=int(seconds),
            command=command, parameters=report, cpus=os.cpu_count(),
            machine=platform.machine())
with open(results, "a") as f:
  f.write(json.dumps(line) + "\n")
print(json.dumps(line))
