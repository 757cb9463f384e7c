"""Exact match and F1 as the official SQuAD evaluation scripts compute them.

The metric functions are Model Garden's copies of the official scripts
(`official.nlp.tools.squad_evaluate_v1_1` / `squad_evaluate_v2_0`: answer
normalization = lower case, drop punctuation, the articles a/an/the and extra
whitespace; token-bag F1; max over the gold answers). This module only adapts
their outputs to what the official scripts print:

* v1.1 (`evaluate-v1.1.py`): {"exact_match", "f1"} in percent (Model Garden
  returns fractions and names F1 "final_f1"); unanswered questions score 0.
* v2.0 (`evaluate-v2.0.py`): {"exact", "f1", "total", "HasAns_*", "NoAns_*"},
  and with a na-prob file (run_squad.py's null_odds.json) also
  "best_exact(_thresh)" and "best_f1(_thresh)" (Model Garden: "final_*").
  Without a na-prob file every prediction counts as given (na prob 0), as in
  the official script; questions without a prediction are left out.

Command line, like the official scripts:
  python -m keras_adapters.squad.evaluate DATA.json predictions.json \
      [--na_prob_file null_odds.json] [--version_2_with_negative]
"""

import json
import sys

from absl import logging
from official.nlp.tools import squad_evaluate_v1_1
from official.nlp.tools import squad_evaluate_v2_0

from keras_adapters import compat
from keras_adapters.errors import UserInputError

# The official names and order of the v2.0 script's output.
_V2_KEYS = ("exact", "f1", "total", "HasAns_exact", "HasAns_f1",
            "HasAns_total", "NoAns_exact", "NoAns_f1", "NoAns_total")
_V2_BEST = {"final_exact": "best_exact",
            "final_exact_thresh": "best_exact_thresh",
            "final_f1": "best_f1", "final_f1_thresh": "best_f1_thresh"}

normalize_answer = compat.squad_normalize_answer


def exact_match_score(prediction, ground_truth):
  """1.0 if the normalized texts are equal (official v1.1)."""
  return float(compat.squad_exact_match(prediction, ground_truth))


def f1_score(prediction, ground_truth):
  """Token-bag F1 of the normalized texts (official v1.1)."""
  return float(compat.squad_f1(prediction, ground_truth))


def evaluate_v1(articles, predictions):
  """Official v1.1 result: {"exact_match": %, "f1": %}."""
  total = 0
  for article in articles:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        total += 1
        if not qa.get("answers"):
          raise UserInputError(
              f"question {qa.get('id')} has no gold answer: SQuAD v1.1 "
              "scores need one (SQuAD 2.0 data: --version_2_with_negative)")
  if not total:
    return {"exact_match": 0.0, "f1": 0.0}
  result = squad_evaluate_v1_1.evaluate(articles, predictions)
  return {"exact_match": 100.0 * result["exact_match"],
          "f1": 100.0 * result["final_f1"]}


def evaluate_v2(articles, predictions, na_probs=None):
  """Official v2.0 result (see the module doc); `na_probs` {id: score}."""
  if not any(qa["id"] in predictions for a in articles
             for p in a["paragraphs"] for qa in p["qas"]):
    return {"exact": 0.0, "f1": 0.0, "total": 0}
  result = squad_evaluate_v2_0.evaluate(articles, predictions, na_probs)
  out = {k: result[k] for k in _V2_KEYS if k in result}
  if na_probs is not None:
    out.update({new: result[old] for old, new in _V2_BEST.items()})
  return out


def evaluate(articles, predictions, version_2_with_negative=False,
             na_probs=None):
  """`evaluate_v2` if `version_2_with_negative`, else `evaluate_v1`."""
  if version_2_with_negative:
    return evaluate_v2(articles, predictions, na_probs)
  return evaluate_v1(articles, predictions)


def format_results(result, global_step=None):
  """`key = value` lines (eval_results.txt)."""
  lines = [f"{k} = {v}" if isinstance(v, int) else f"{k} = {v:.6f}"
           for k, v in result.items()]
  if global_step is not None:
    lines.append(f"global_step = {global_step}")
  return "\n".join(lines) + "\n"


def main(argv=None):
  import argparse  # pylint: disable=g-import-not-at-top
  from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(
      prog="python -m keras_adapters.squad.evaluate",
      description="Official SQuAD v1.1 / v2.0 exact match and F1.")
  parser.add_argument("data_file")
  parser.add_argument("pred_file")
  parser.add_argument("--na_prob_file", default=None)
  parser.add_argument("--version_2_with_negative", action="store_true",
                      help="SQuAD 2.0 metrics (implied by --na_prob_file)")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.WARNING)
  try:
    squad = data.read_squad_file(args.data_file, is_training=False,
                                 version_2_with_negative=True, warn=False)
    predictions = data.load_json(args.pred_file, "predictions file")
    na_probs = (data.load_json(args.na_prob_file, "na-prob file")
                if args.na_prob_file else None)
    for name, obj in (("predictions", predictions), ("na-prob", na_probs)):
      if obj is not None and not isinstance(obj, dict):
        raise UserInputError(f"the {name} file must hold a JSON object "
                             "{question id: value}")
    result = evaluate(squad.articles, predictions,
                      args.version_2_with_negative or bool(na_probs),
                      na_probs)
  except UserInputError as e:
    print(f"evaluate: error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(result))
  return 0


if __name__ == "__main__":
  sys.exit(main())
