"""Deterministic by-article split of a SQuAD file into train and eval files.

Only SQuAD's dev-v1.1.json is available here, so every SQuAD run trains on
some of its articles and evaluates on the others. Articles, not questions, are
split, so no context is seen in both. The eval articles are
`random.Random(seed).sample(range(num_articles), eval_articles)`; both outputs
keep the input's article order and "version". Same input + arguments => same
files (byte for byte), so state the command with every result:

  python -m keras_adapters.squad.split \
      --input ../shared/data/squad/dev-v1.1.json \
      --train_out runs/squad/train.json --eval_out runs/squad/eval.json \
      --eval_articles 8 --seed 0

`--train_articles N` keeps only N (seeded) of the remaining articles for
training, e.g. for a quick smoke run.
"""

import argparse
import json
import random
import sys

from keras_adapters.errors import UserInputError
from keras_adapters.saving.atomic import atomic_file


def _count(articles):
  paragraphs = sum(len(a["paragraphs"]) for a in articles)
  questions = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
  return paragraphs, questions


def split_articles(dataset, eval_articles, seed=0, train_articles=None):
  """Returns (train, eval) SQuAD dicts (see the module doc)."""
  articles = dataset.get("data") if isinstance(dataset, dict) else None
  if not isinstance(articles, list) or not all(
      isinstance(a, dict) and isinstance(a.get("paragraphs"), list)
      for a in articles):
    raise UserInputError("input is not a SQuAD file (needs data[] of articles "
                         "with paragraphs[])")
  n = len(articles)
  if not 1 <= eval_articles < n:
    raise UserInputError(f"--eval_articles must be in 1..{n - 1} (the file has"
                         f" {n} articles), got {eval_articles}")
  rng = random.Random(seed)
  eval_ids = set(rng.sample(range(n), eval_articles))
  rest = [i for i in range(n) if i not in eval_ids]
  if train_articles is not None:
    if not 1 <= train_articles <= len(rest):
      raise UserInputError(f"--train_articles must be in 1..{len(rest)}, got "
                           f"{train_articles}")
    rest = sorted(rng.sample(rest, train_articles))
  version = dataset.get("version", "1.1")

  def subset(ids):
    return {"version": version, "data": [articles[i] for i in sorted(ids)]}

  return subset(rest), subset(eval_ids)


def _write(path, dataset):
  with atomic_file(path) as f:
    json.dump(dataset, f, ensure_ascii=False)


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m keras_adapters.squad.split",
      description="Split a SQuAD file by article into train/eval files.")
  parser.add_argument("--input", required=True, help="SQuAD JSON file")
  parser.add_argument("--train_out", required=True)
  parser.add_argument("--eval_out", required=True)
  parser.add_argument("--eval_articles", type=int, default=8,
                      help="articles for evaluation (default 8)")
  parser.add_argument("--train_articles", type=int, default=None,
                      help="keep only this many of the other articles")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  from keras_adapters.squad.data import load_json  # pylint: disable=g-import-not-at-top
  try:
    train, held_out = split_articles(load_json(args.input), args.eval_articles,
                                     args.seed, args.train_articles)
    _write(args.train_out, train)
    _write(args.eval_out, held_out)
  except UserInputError as e:
    print(f"split: error: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    print(f"split: error: cannot write {e.filename}: {e.strerror}",
          file=sys.stderr)
    return 2
  for name, path, part in (("train", args.train_out, train),
                           ("eval", args.eval_out, held_out)):
    paragraphs, questions = _count(part["data"])
    print(f"{name}: {path}: {len(part['data'])} articles, {paragraphs} "
          f"paragraphs, {questions} questions")
  print("eval articles: " + ", ".join(str(a.get("title", "?"))
                                      for a in held_out["data"]))
  return 0


if __name__ == "__main__":
  sys.exit(main())
