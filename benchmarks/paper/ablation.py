"""The paper's adapter ablation (Figure 6, left/centre), without retraining.

Loads a trained adapter pack (e.g. runs/paper/<run>/adapter_pack.npz), then
for every contiguous span of layers i..j removes that span's trained adapters
and re-evaluates dev. An adapter is x + up(GELU(down(x))), so zeroing its
up-projection kernel and bias removes it exactly; the trained LayerNorms and
head stay. The span 0..L-1 is "all adapters removed". With 6 layers that is
1 + 21 evaluations. Appends one JSON line to the results file; figures.py
draws the heatmap from it.

Usage:
  python -m benchmarks.paper.ablation \
    --adapter_pack runs/paper/mrpc_adapter64_lr1e-3_s1/adapter_pack.npz \
    --data_dir ../shared/data/glue_data/MRPC
"""

import argparse
import hashlib
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Score the heatmap shows, per task (MRPC: mean of accuracy and F1, as the
# learning-rate selection in plan.py).
SCORE_KEYS = {"mrpc": ("accuracy", "f1"), "cola": ("matthews_corr",),
              "sts-b": ("spearman",)}


def score(task, metrics):
  keys = SCORE_KEYS.get(task, ("accuracy",))
  return sum(metrics[k] for k in keys) / len(keys)


def sha256(path):
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--adapter_pack", required=True)
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--max_examples", type=int, default=0,
                      help="evaluate only the first N dev rows (smoke tests)")
  parser.add_argument("--eval_batch_size", type=int, default=32)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks/results/ablation.jsonl"))
  return parser.parse_args()


def read_pack_and_dev(args):
  """(pack config, GLUE processor, dev examples); a one-line exit if the
  pack is not an adapter run's or the dev file is bad."""
  from keras_adapters.saving import adapter_pack
  from keras_adapters.data import glue
  from keras_adapters.errors import UserInputError
  try:
    config, _ = adapter_pack.read_pack(args.adapter_pack)
    if config.get("fine_tune_mode") != "adapter":
      raise UserInputError(f"{args.adapter_pack} was trained with "
                           f"fine_tune_mode={config.get('fine_tune_mode')}; "
                           "the ablation needs an adapter run's pack")
    processor = glue.get_processor(config["task_name"])
    examples = processor.get_examples(args.data_dir, "dev")
  except UserInputError as e:
    sys.exit(f"ablation.py: error: {e}")
  return config, processor, examples[:args.max_examples or None]


def dev_evaluator(args, config, processor, examples):
  """(the pack's classifier's encoder, a function returning its dev
  metrics as the weights are now)."""
  from keras_adapters.saving import adapter_pack, metrics
  from keras_adapters.models.text_classifier import build_classifier
  from keras_adapters.data.features import make_dataset
  from keras_adapters.loaders.pretrained import load_pretrained
  pretrained = load_pretrained()
  num_classes = 1 if processor.is_regression else len(processor.labels)
  model, encoder = build_classifier(pretrained.encoder, num_classes,
                                    "adapter", config["adapter_size"])
  adapter_pack.load_adapter_pack(args.adapter_pack, model, encoder)
  dataset = make_dataset(
      examples, vocab_file=pretrained.vocab_file,
      do_lower_case=pretrained.do_lower_case,
      max_seq_length=config["max_seq_length"], label_list=processor.labels,
      is_regression=processor.is_regression,
      batch_size=args.eval_batch_size, is_training=False)
  # The labels as make_dataset encodes them (one place for text -> label).
  gold = [label for _, batch in dataset for label in batch.numpy()]

  def evaluate():
    outputs = model.predict(dataset, verbose=0)
    if processor.is_regression:
      outputs = outputs[:, 0]
    return metrics.compute_metrics(processor, gold, outputs)
  return encoder, evaluate


def ablate(blocks, evaluate):
  """(dev metrics with every adapter, [the metrics with the adapters of
  layers first..last removed, for every span]); restores every weight."""
  baseline = evaluate()
  print(f"all adapters: {baseline}", flush=True)
  spans = []
  for first in range(len(blocks)):
    for last in range(first, len(blocks)):
      ups = [a.up_project for b in blocks[first:last + 1] for a in b.adapters]
      saved = [(w, w.numpy()) for up in ups for w in (up.kernel, up.bias)]
      for w, value in saved:
        w.assign(value * 0)
      result = evaluate()
      for w, value in saved:
        w.assign(value)
      spans.append(dict(first=first, last=last, metrics=result))
      print(f"layers {first}..{last} removed: {result}", flush=True)
  if evaluate() != baseline:  # every weight must be back as loaded
    sys.exit("ablation.py: error: restoring the adapters changed the model")
  return baseline, spans


def main():
  args = parse_args()
  config, processor, examples = read_pack_and_dev(args)
  started = time.time()
  encoder, evaluate = dev_evaluator(args, config, processor, examples)
  blocks = encoder.transformer_layers
  baseline, spans = ablate(blocks, evaluate)
  line = dict(
      benchmark="ablation", adapter_pack=args.adapter_pack,
      pack_sha256=sha256(args.adapter_pack), task=processor.name,
      adapter_size=config["adapter_size"],
      max_seq_length=config["max_seq_length"], layers=len(blocks),
      dev_examples=len(examples), score_keys=list(
          SCORE_KEYS.get(processor.name, ("accuracy",))),
      baseline=baseline, spans=spans,
      all_removed=spans[len(blocks) - 1]["metrics"],
      wall_seconds=round(time.time() - started),
      command="python -m benchmarks.paper.ablation " + " ".join(sys.argv[1:]),
      finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
  os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
  with open(args.results, "a") as f:
    f.write(json.dumps(line) + "\n")
  print(f"appended to {args.results}")


if __name__ == "__main__":
  main()
