"""Training step time with Keras' einsum attention vs `MatmulAttention`.

Both attention implementations give bitwise the same numbers
(tests/test_matmul_attention.py); this measures what the switch saves. Each
mode (adapters, full fine-tuning, LayerNorm-only) is built twice, once with
each attention, and all configurations are timed round-robin in one process
through `model.fit` on one fixed batch of real MRPC pairs (speed.py's method),
XLA off (`--modes` picks modes). Reports the median wall and CPU seconds per
step; CPU seconds change least when other processes load the machine.
Appends one JSON line.

Usage: python -m benchmarks.attention_impl
       python -m benchmarks.attention_impl --batch 2 --seq 16 --steps 1 \
         --rounds 1 --results /tmp/attention.jsonl      # smoke test
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys

from benchmarks import speed  # also quiets TF's logging


def build(mode, impl, args):
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters import MatmulAttention  # pylint: disable=g-import-not-at-top
  model = speed.build(f"train:{mode}:0", args)  # built with MatmulAttention
  if impl == "einsum":  # back to Keras' class before the step is traced
    for layer in model.submodules:
      if type(layer) is MatmulAttention:  # pylint: disable=unidiomatic-typecheck
        layer.__class__ = tf_keras.layers.MultiHeadAttention
  return model


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--results", default=os.path.join(
      speed.REPO, "benchmarks/results/attention_impl.jsonl"))
  speed.add_modes_flag(parser)
  args = speed.check_modes(parser, parser.parse_args(argv))
  if not os.path.isdir(os.path.dirname(os.path.abspath(args.results))):
    parser.error(f"--results {args.results}: its directory does not exist")
  import tf_keras  # pylint: disable=g-import-not-at-top
  inputs, labels = speed.real_batch(args.batch, args.seq)
  steps, classes = {}, {}
  for mode in args.modes:
    for impl in ("einsum", "matmul"):
      model = build(mode, impl, args)
      classes[f"{mode}:{impl}"] = sorted({
          type(l).__name__ for l in model.submodules
          if isinstance(l, tf_keras.layers.MultiHeadAttention)})
      steps[f"{mode}:{impl}"] = step = speed.FitSteps(model, inputs, labels)
      step()  # traces
      step()  # warm-up
  wall, cpu = speed.alternate(list(steps), steps, args.rounds, args.steps)
  med = lambda xs: round(statistics.median(xs), 3)
  result = dict(
      time=datetime.datetime.now().isoformat(timespec="minutes"),
      command=" ".join(["python -m benchmarks.attention_impl"] + (
          argv if argv is not None else sys.argv[1:])),
      batch=args.batch, seq=args.seq, steps_per_round=args.steps,
      rounds=args.rounds, cpus=os.cpu_count(), cpu_model=speed._cpu_model(),  # pylint: disable=protected-access
      machine=platform.machine(), attention_classes=classes,
      wall_s={k: med(v) for k, v in wall.items()},
      cpu_s={k: med(v) for k, v in cpu.items()})
  result["matmul_vs_einsum_cpu"] = {
      m: round(result["cpu_s"][f"{m}:matmul"] / result["cpu_s"][f"{m}:einsum"],
               3) for m in args.modes}
  if {"adapter", "full"} <= set(args.modes):
    result["adapter_vs_full_cpu"] = {
        i: round(result["cpu_s"][f"adapter:{i}"] / result["cpu_s"][f"full:{i}"],
                 3) for i in ("einsum", "matmul")}
  with open(args.results, "a") as f:
    f.write(json.dumps(result) + "\n")
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
