"""Speed and cost in one run: training step time of adapters vs full
fine-tuning vs LayerNorm-only, with and without XLA (jit_compile); inference
latency and throughput of the adapter model vs the bare encoder; peak memory
of each; the machine's matmul GFLOP/s and the training GFLOP/s achieved as a
share of it.

All timed configurations live in one process and are timed alternately
(round-robin, `--rounds` rounds of `--steps` steps each), so a change in
machine load hits them alike; the reported time is the median step. Peak
memory needs a process per configuration: each is re-run alone in a child
process for a few steps and its peak RSS is read (`--no_memory` skips this).
Inputs are one fixed batch of the first real MRPC training pairs, tokenized
once before any timing, so the input pipeline is not timed. Appends one JSON
line to the results file.

Training FLOPs are counted analytically (matmuls only; embeddings, softmax,
LayerNorm, GELU left out). Per token and layer the forward pass costs
F = 8d^2 + 4 d d_ff + 4 T d (+ 8 d m for two adapters). Full fine-tuning
costs 3F (forward, input gradients, weight gradients); with a frozen
backbone the weight gradients of the frozen matmuls are skipped, so adapters
and LayerNorm-only cost about 2F: hence the 2/3 floor of adapter/full.

Usage: python -m benchmarks.speed                        # the real run
       python -m benchmarks.speed --steps 2 --rounds 1 --seq 32 --batch 4 \
         --results /tmp/speed.jsonl                     # smoke test
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN_MODES = ("adapter", "full", "layer_norm")


def add_modes_flag(parser):
  parser.add_argument("--modes", default=",".join(TRAIN_MODES),
                      help="training modes to measure, comma-separated "
                           "(adapter, full, layer_norm)")


def check_modes(parser, args):
  """args.modes as a tuple in TRAIN_MODES' order; one-line error if unknown."""
  modes = args.modes.split(",")
  unknown = sorted(set(modes) - set(TRAIN_MODES))
  if unknown:
    parser.error(f"--modes: unknown {','.join(unknown)}; choose from "
                 f"{','.join(TRAIN_MODES)}")
  args.modes = tuple(m for m in TRAIN_MODES if m in modes)
  return args


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--steps", type=int, default=10,
                      help="timed training steps per config per round")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=2,
                      help="untimed steps per config after tracing")
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--xla", default="off,on",
                      help="jit_compile settings to time: off, on or off,on")
  parser.add_argument("--infer_steps", type=int, default=20)
  parser.add_argument("--memory_steps", type=int, default=3)
  parser.add_argument("--no_memory", action="store_true")
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks/results/speed.jsonl"))
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  add_modes_flag(parser)
  args = parser.parse_args(argv)
  if not set(args.xla.split(",")) <= {"off", "on"}:
    parser.error(f"--xla {args.xla}: use off, on or off,on")
  return check_modes(parser, args)


def real_batch(batch, seq):
  """One batch of real MRPC training pairs, tokenized by the library."""
  from keras_adapters.data import glue
  from keras_adapters.data.features import make_dataset
  from keras_adapters.loaders.presets import cache_dir
  processor = glue.get_processor("MRPC")
  examples = processor.get_examples(
      os.path.join(REPO, "..", "shared", "data", "glue_data", "MRPC"),
      "train")[:batch]
  ds = make_dataset(examples, vocab_file=os.path.join(
      cache_dir("all-MiniLM-L6-v2"), "vocab.txt"), do_lower_case=True,
                    max_seq_length=seq, label_list=processor.labels,
                    is_regression=False, batch_size=batch, is_training=False)
  return next(iter(ds))


def build(kind, args):
  """'train:<mode>:<xla 0/1>' -> compiled classifier; 'infer:<adapter|bare>
  :<xla>' -> a forward function of the classifier (training=False)."""
  import tensorflow as tf
  import tf_keras
  from keras_adapters.training import optimizers
  from keras_adapters.models.text_classifier import build_classifier
  from keras_adapters.loaders.pretrained import load_pretrained
  role, name, xla = kind.split(":")
  xla = xla == "1"
  encoder = load_pretrained().encoder  # a fresh copy: full mode changes it
  if role == "train":
    model, _ = build_classifier(encoder, 2, name, args.adapter_size)
    model.compile(optimizer=optimizers.create_optimizer(1e-4, 10000, 0.1),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True), jit_compile=xla)
    return model
  mode = "adapter" if name == "adapter" else "full"  # full: no adapters
  model, _ = build_classifier(encoder, 2, mode, args.adapter_size)
  forward = tf.function(lambda x: model(x, training=False), jit_compile=xla)
  return forward


class FitSteps:
  """Training steps through `model.fit` on the fixed batch, repeated.

  A `train_on_batch` loop shows bogus stalls here (step times in whole
  multiples of ~5.1 s while the process used far less CPU), so training is
  timed the way it runs: `fit(steps)` returns ([wall], [CPU]) seconds per
  step, from the gaps between consecutive batch ends (the first from the
  first batch's start). Called without arguments it runs one step.
  """

  def __init__(self, model, inputs, labels):
    import tensorflow as tf
    self.model = model
    self.dataset = tf.data.Dataset.from_tensors((inputs, labels)).repeat()

  def fit(self, steps):
    import tf_keras
    marks = []

    class Clock(tf_keras.callbacks.Callback):
      def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
          marks.append((time.perf_counter(), time.process_time()))

      def on_train_batch_end(self, batch, logs=None):
        marks.append((time.perf_counter(), time.process_time()))

    self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                   callbacks=[Clock()])
    wall = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    return wall, cpu

  def __call__(self):
    return self.fit(1)


def step_fn(kind, target, inputs, labels):
  if kind.startswith("train"):
    return FitSteps(target, inputs, labels)
  return lambda: target(inputs).numpy()


def matmul_gflops(repeats=10):
  """Best GFLOP/s of float32 matmuls: a square one and BERT's FFN shape."""
  import tensorflow as tf
  result = {}
  for label, (m, k, n) in {"2048x2048x2048": (2048, 2048, 2048),
                           "ffn_4096x384x1536": (4096, 384, 1536)}.items():
    a, b = tf.random.normal([m, k]), tf.random.normal([k, n])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul()
    best = min(_timed(matmul) for _ in range(repeats))
    result[label] = 2 * m * k * n / best / 1e9
  return result


def _timed(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def training_flops(mode, batch, seq, m, d=384, d_ff=1536, layers=6):
  tokens = batch * seq * layers
  forward = tokens * (8 * d * d + 4 * d * d_ff + 4 * seq * d)
  adapters = tokens * 8 * d * m if mode == "adapter" else 0
  if mode == "full":
    return 3 * forward
  return 2 * forward + 3 * adapters


def child(args):
  """Builds one config alone, runs a few steps, prints its peak RSS."""
  inputs, labels = real_batch(args.batch if args.child.startswith("train")
                              else int(args.child.split(":")[3]), args.seq)
  kind = ":".join(args.child.split(":")[:3])
  rss_mb = _peak_rss_mb
  target = build(kind, args)
  built = rss_mb()
  step = step_fn(kind, target, inputs, labels)
  for _ in range(args.memory_steps):
    step()
  print(json.dumps(dict(peak_rss_mb=round(rss_mb()),
                        peak_rss_after_build_mb=round(built))))


def _peak_rss_mb():
  """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries the
  parent's RSS at exec into the child's ru_maxrss."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(kind, args, batch):
  command = [sys.executable, "-m", "benchmarks.speed", "--child",
             f"{kind}:{batch}", "--seq", str(args.seq), "--batch",
             str(args.batch), "--adapter_size", str(args.adapter_size),
             "--memory_steps", str(args.memory_steps)]
  out = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                       check=False)
  if out.returncode:
    return dict(error=out.stderr.strip().splitlines()[-1:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def alternate(kinds, steps_of, rounds, steps):
  """Round-robin timing: ({kind: [wall seconds per step]}, {kind: [CPU
  seconds per step, all threads of this process]}). CPU time hardly changes
  when other processes load the machine, wall time does."""
  times, cpu = {k: [] for k in kinds}, {k: [] for k in kinds}
  for _ in range(rounds):
    for kind in kinds:
      if isinstance(steps_of[kind], FitSteps):
        wall, cpu_seconds = steps_of[kind].fit(steps)
        times[kind] += wall
        cpu[kind] += cpu_seconds
        continue
      for _ in range(steps):
        cpu_start = time.process_time()
        times[kind].append(_timed(steps_of[kind]))
        cpu[kind].append(time.process_time() - cpu_start)
  return times, cpu


def _error_line(e):
  return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"


def build_steps(train_kinds, infer_kinds, args):
  """({kind[:batch size]: one step}, {kind: error}) for every kind that
  builds; inference at batch 1 and at --batch."""
  batch = real_batch(args.batch, args.seq)
  single = real_batch(1, args.seq)
  steps_of, errors = {}, {}
  for kind in train_kinds + infer_kinds:
    try:
      target = build(kind, args)
      if kind.startswith("train"):
        steps_of[kind] = step_fn(kind, target, *batch)
      else:
        steps_of[kind + ":1"] = step_fn(kind, target, single[0], None)
        steps_of[kind + f":{args.batch}"] = step_fn(kind, target, batch[0],
                                                    None)
    except Exception as e:  # e.g. an op XLA cannot compile: record, go on
      errors[kind] = _error_line(e)
      print(f"{kind}: {errors[kind]}", file=sys.stderr)
  return steps_of, errors


def warm_up(steps_of, errors, warmup):
  """Each step's first call (tracing, XLA compilation) in seconds; drops
  the steps that fail, into `errors`."""
  warm = {}
  for kind, step in list(steps_of.items()):
    try:
      warm[kind] = _timed(step)
      for _ in range(warmup):
        step()
    except Exception as e:
      errors[kind] = _error_line(e)
      print(f"{kind}: {errors[kind]}", file=sys.stderr)
      del steps_of[kind]
  return warm


def derived(median, args, xla_settings, machine_gflops):
  """The ratios (adapter/full, inference adapter/bare, XLA speed-up), the
  achieved GFLOP/s per training mode, and the inference latencies."""
  ratios, achieved = {}, {}
  for x in xla_settings:
    full = median.get(f"train:full:{x}")
    for mode in args.modes:
      t = median.get(f"train:{mode}:{x}")
      if t is None:
        continue
      flops = training_flops(mode, args.batch, args.seq, args.adapter_size)
      gflops = flops / t / 1e9
      achieved[f"{mode}:xla{x}"] = dict(
          gflop_per_step=round(flops / 1e9, 1), gflops=round(gflops, 1),
          share_of_matmul_peak=round(gflops / machine_gflops, 3))
      if full and mode != "full":
        ratios[f"{mode}/full:xla{x}"] = round(t / full, 3)
    for size in (1, args.batch):
      a = median.get(f"infer:adapter:{x}:{size}")
      b = median.get(f"infer:bare:{x}:{size}")
      if a and b:
        ratios[f"infer_adapter/bare:xla{x}:batch{size}"] = round(a / b, 3)
  for mode in args.modes:
    on, off = median.get(f"train:{mode}:1"), median.get(f"train:{mode}:0")
    if on and off:
      ratios[f"xla_speedup:{mode}"] = round(off / on, 3)
  inference = {k: dict(latency_ms=round(1000 * v, 1),
                       examples_per_second=round(int(k.split(":")[3]) / v, 1))
               for k, v in median.items() if k.startswith("infer")}
  return dict(ratios=ratios, achieved=achieved, inference=inference)


def main(argv=None):
  args = parse_args(argv)
  if args.child:
    return child(args)
  import tensorflow as tf
  load_start = os.getloadavg()
  started = time.time()
  xla_settings = [{"off": "0", "on": "1"}[x]
                  for x in args.xla.split(",")]
  train_kinds = [f"train:{m}:{x}" for x in xla_settings for m in args.modes]
  infer_kinds = [f"infer:{n}:{x}" for x in xla_settings
                 for n in ("adapter", "bare")]
  steps_of, errors = build_steps(train_kinds, infer_kinds, args)
  warm = warm_up(steps_of, errors, args.warmup)
  train = [k for k in steps_of if k.startswith("train")]
  infer = [k for k in steps_of if k.startswith("infer")]
  times, cpu = alternate(train, steps_of, args.rounds, args.steps)
  infer_times, infer_cpu = alternate(infer, steps_of, args.rounds,
                                     args.infer_steps)
  times.update(infer_times)
  cpu.update(infer_cpu)
  median = {k: statistics.median(v) for k, v in times.items()}
  peak = matmul_gflops()

  result = dict(
      benchmark="speed", batch=args.batch, max_seq_length=args.seq,
      adapter_size=args.adapter_size, steps=args.steps, rounds=args.rounds,
      median_seconds={k: round(v, 4) for k, v in median.items()},
      median_cpu_seconds={k: round(statistics.median(v), 4)
                          for k, v in cpu.items()},
      first_call_seconds={k: round(v, 2) for k, v in warm.items()},
      errors=errors, matmul_gflops={k: round(v, 1) for k, v in peak.items()})
  result.update(derived(median, args, xla_settings, max(peak.values())))
  if not args.no_memory:
    sizes = lambda k: [args.batch] if k.startswith("train") else [
        1, args.batch]
    result["peak_memory"] = {f"{k}:{b}": memory(k, args, b)
                             for k in train_kinds + infer_kinds
                             for b in sizes(k)}
  result.update(
      wall_seconds=round(time.time() - started),
      loadavg_start=load_start, loadavg_end=os.getloadavg(),
      command="python -m benchmarks.speed " + " ".join(
          sys.argv[1:] if argv is None else argv),
      tensorflow=tf.__version__, cpus=os.cpu_count(),
      machine=platform.machine(), cpu=_cpu_model(),
      finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
  os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
  with open(args.results, "a") as f:
    f.write(json.dumps(result) + "\n")
  print(json.dumps(result, indent=1))


def _cpu_model():
  try:
    with open("/proc/cpuinfo") as f:
      return next((l.split(":", 1)[1].strip() for l in f
                   if l.startswith("model name")), "")
  except OSError:
    return ""


if __name__ == "__main__":
  main()
