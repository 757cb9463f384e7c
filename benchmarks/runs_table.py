"""Prints a Markdown table of a results .jsonl of driver runs (one line per
finished run, as glue_core.sh appends them: name, dev metrics, parameter
report, wall time, command).

Usage: python -m benchmarks.runs_table benchmarks/results/glue_core.jsonl
"""

import argparse
import json


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("results", help="a results .jsonl, e.g. "
                      "benchmarks/results/glue_core.jsonl")
  args = parser.parse_args()
  with open(args.results) as f:
    rows = [json.loads(l) for l in f if l.strip()]
  print("| run | dev metrics | trained params | wall time | command |")
  print("|---|---|---|---|---|")
  for r in rows:
    metrics = ", ".join(f"{k[5:]} {v:.4f}" for k, v in
                        sorted(r["metrics"].items()) if k.startswith("eval_"))
    params = r.get("parameters", "").split("trained per task ")[-1]
    print(f"| {r['name']} | {metrics} | {params} | "
          f"{r['wall_seconds'] / 60:.1f} min | `{r['command']}` |")


if __name__ == "__main__":
  main()
