"""Where a training step's time goes, by TensorFlow op type.

Profiles `model.fit` steps of the driver's classifier on one fixed batch of
real MRPC pairs (batch 32 x 128, XLA off) with the TensorFlow profiler, once
per tuning mode, and sums the host self-time of every op by type (dense-layer
einsums and the attention products apart, Softmax, Erf, ...; idle time left
out). Appends one JSON line with each mode's step time and its top op types,
as seconds per step and shares.

  python -m benchmarks.profile_step             # adapter and full, ~5 min
"""

import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time

from benchmarks.fit_timing import REPO
from benchmarks.fit_timing import append_line

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The op types (as op_seconds names them) that are matrix products.
MATMUL_TYPES = ("Einsum (dense layers)", "Attention scores and context",
                "MatMul", "_MklMatMul", "_FusedMatMul", "_MklFusedMatMul",
                "BatchMatMulV2", "BatchMatMulV3", "_MklBatchMatMulV2")


def op_seconds(logdir):
  """{op type: host self-seconds} from the profile written to `logdir`."""
  from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # pylint: disable=g-import-not-at-top
  paths = glob.glob(os.path.join(logdir, "plugins/profile/*/*.xplane.pb"))
  data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(
      paths, "framework_op_stats", {})
  if not ok:
    sys.exit("profile_step.py: error: could not read the profile")
  table = json.loads(data)
  table = table[0] if isinstance(table, list) else table
  columns = [c["id"] for c in table["cols"]]
  by_type = {}
  for row in table["rows"]:
    values = dict(zip(columns, (cell.get("v") for cell in row["c"])))
    if values.get("host_or_device") not in (None, "Host"):
      continue
    op_type = values["type"]
    if op_type == "IDLE":
      continue
    # Model Garden's dense layers are einsums too. Attention scores and
    # context are einsums in Keras' MultiHeadAttention and batched matmuls in
    # MatmulAttention. oneDNN builds (Intel CPUs) prefix op types with _Mkl.
    bare_type = op_type.replace("_Mkl", "")
    if bare_type in ("Einsum", "BatchMatMulV2", "BatchMatMulV3"):
      attention = re.search(r"self_attention/(einsum(_\d+)?/|MatMul(_\d+)?"
                            r"($|/))", values["operation"])
      op_type = ("Attention scores and context" if attention else
                 "Einsum (dense layers)" if bare_type == "Einsum" else op_type)
    # total_self_time is in microseconds.
    by_type[op_type] = by_type.get(op_type, 0.0) + values[
        "total_self_time"] / 1e6
  return by_type


def profile(mode, args):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  from benchmarks.speed import build, real_batch  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(42)
  model = build(f"train:{mode}:0", args)
  inputs, labels = real_batch(args.batch, args.seq)
  ds = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
  model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # trace, warm up
  logdir = tempfile.mkdtemp(prefix="profile_step_")
  tf.profiler.experimental.start(logdir)
  start = time.perf_counter()
  model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
  seconds = (time.perf_counter() - start) / args.steps
  tf.profiler.experimental.stop()
  return dict(step_s=round(seconds, 3), **op_summary(
      op_seconds(logdir), args.steps, args.top, MATMUL_TYPES))


def op_summary(by_type, steps, top, matmul_types):
  """Per step: all op seconds, those of `matmul_types` and their share, and
  the `top` op types (seconds and share). Also used by
  benchmarks/adapterhub/profile_hf.py for torch's ops."""
  total = sum(by_type.values())
  matmul = sum(v for k, v in by_type.items() if k in matmul_types)
  ranked = sorted(by_type.items(), key=lambda kv: -kv[1])[:top]
  return dict(op_self_s_per_step=round(total / steps, 3),
              matmul_s_per_step=round(matmul / steps, 3),
              matmul_share=round(matmul / total, 3),
              top_ops={k: dict(s_per_step=round(v / steps, 3),
                               share=round(v / total, 3)) for k, v in ranked})


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--modes", default="adapter,full")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--top", type=int, default=15)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "profile_step.jsonl"))
  args = parser.parse_args()
  unknown = set(args.modes.split(",")) - {"adapter", "full", "layer_norm"}
  if unknown:
    parser.error(f"--modes: unknown {','.join(sorted(unknown))}; choose from "
                 "adapter, full, layer_norm (comma-separated)")
  begin = time.time()
  modes = {m: profile(m, args) for m in args.modes.split(",")}
  line = dict(name="profile_step", batch=args.batch, max_seq_length=args.seq,
              steps=args.steps, modes=modes,
              note="host self-time summed over the op-pool threads, so the "
              "op seconds per step can exceed the wall step time")
  append_line(args.results, line, begin, "benchmarks.profile_step")


if __name__ == "__main__":
  main()
