"""Where AdapterHub's training step time goes, by PyTorch op, beside ours:
the counterpart of benchmarks/profile_step.py.

Runs in .venv-adapterhub. Builds hf_train.py's model (houlsby_gelu_ln: our
trained parameters), trains on one fixed batch of the first real MRPC
training pairs, padded to --seq like profile_step.py's batch, with
hf_train.py's optimizer step (AdamW, clipping, schedule), and profiles
--steps steps with torch.profiler after 2 warm-up steps. Sums each op's self
CPU time by name. Ops run one after another on the calling thread (each
spread over the intra-op threads), so these seconds add up to about the step
time; TensorFlow's host self-times are summed over its op threads instead.
Both get the same coarse split: matrix products vs everything else.

  .venv-adapterhub/bin/python -m benchmarks.adapterhub.profile_hf --seq 56
  .venv/bin/python -m benchmarks.profile_step --modes adapter --seq 56

One JSON line goes to --results (benchmarks/results/profile_step.jsonl, the
file profile_step.py appends to).
"""

import argparse
import os
import sys
import time

from benchmarks.adapterhub import hf_train
from benchmarks.fit_timing import append_line  # stdlib-only at import
from benchmarks.profile_step import op_summary  # stdlib-only at import

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--top", type=int, default=15)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--num_threads", type=int, default=0,
                      help="torch threads (0: one per core)")
  parser.add_argument("--data_dir", default=os.path.join(
      hf_train.REPO, "..", "shared", "data", "glue_data", "MRPC"))
  parser.add_argument("--results", default=os.path.join(
      hf_train.REPO, "benchmarks", "results", "profile_step.jsonl"))
  return parser.parse_args()


def real_batch(args):
  """The first --batch MRPC training pairs, padded to --seq."""
  from transformers import BertTokenizerFast
  processor = hf_train.repo_module("data.glue").get_processor("MRPC")
  if not os.path.isdir(args.data_dir):
    sys.exit(f"profile_hf.py: error: no MRPC data at {args.data_dir}; "
             "give --data_dir")
  examples = processor.get_examples(args.data_dir, "train")[:args.batch]
  tokenizer = BertTokenizerFast(
      os.path.join(hf_train.model_dir(), "vocab.txt"), do_lower_case=True)
  ids, mask, types_, labels = hf_train.encode(
      tokenizer, examples, args.seq, processor.labels, False)
  return dict(input_ids=ids, attention_mask=mask, token_type_ids=types_,
              labels=labels)


def train_step(model, batch, optimizer, schedule, trained):
  """hf_train.train's step."""
  import torch
  model(**batch).loss.backward()
  torch.nn.utils.clip_grad_norm_(trained, 1.0)
  optimizer.step()
  schedule.step()
  optimizer.zero_grad(set_to_none=True)


def profile(args):
  import torch
  from torch.profiler import ProfilerActivity
  torch.manual_seed(42)
  torch.set_num_threads(args.num_threads or os.cpu_count())
  batch = real_batch(args)
  model = hf_train.build_model(
      argparse.Namespace(adapter_size=args.adapter_size,
                         variant="houlsby_gelu_ln"), 2)
  model.train()
  trained = [p for p in model.parameters() if p.requires_grad]
  optimizer, schedule = hf_train.optimizer_and_schedule(
      model, argparse.Namespace(learning_rate=1e-3, warmup_proportion=0.1),
      100)
  for _ in range(2):  # warm up
    train_step(model, batch, optimizer, schedule, trained)
  with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
    start = time.perf_counter()
    for _ in range(args.steps):
      train_step(model, batch, optimizer, schedule, trained)
    seconds = (time.perf_counter() - start) / args.steps
  by_op = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
  return seconds, by_op


def main():
  args = parse_args()
  begin = time.time()
  seconds, by_op = profile(args)
  import torch
  import adapters
  line = dict(
      name="profile_step_adapterhub", library=f"adapters {adapters.__version__}"
      f" (torch {torch.__version__})", batch=args.batch,
      max_seq_length=args.seq, steps=args.steps, threads=torch.get_num_threads(),
      step_s=round(seconds, 3),
      **op_summary(by_op, args.steps, args.top, MATMUL_OPS),
      note="self CPU time of each op on the calling thread (torch.profiler); "
      f"matrix products: {', '.join(MATMUL_OPS)}")
  append_line(args.results, line, begin, "benchmarks.adapterhub.profile_hf")

if __name__ == "__main__":
  main()
