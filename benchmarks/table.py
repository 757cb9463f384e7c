"""Prints a Markdown table of a results .jsonl (one line per finished run).

Usage: python benchmarks/table.py benchmarks/results/glue_core.jsonl
"""

import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | dev metrics | trained params | wall time | command |")
print("|---|---|---|---|---|")
for r in rows:
  metrics = ", ".join(f"{k[5:]} {v:.4f}" for k, v in sorted(r["metrics"].items())
                      if k.startswith("eval_"))
  params = r.get("parameters", "").split("trained per task ")[-1]
  print(f"| {r['name']} | {metrics} | {params} | "
        f"{r['wall_seconds'] / 60:.1f} min | `{r['command']}` |")
