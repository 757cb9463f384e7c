"""SQuAD: reading/validation, doc_stride windows, official metrics, split,
span model, and run_squad.py end to end on a tiny model (real SQuAD text)."""

import collections
import copy
import json
import re
import string
import types

import numpy as np
import pytest

import harness
from keras_adapters.config import AdapterConfig
from keras_adapters.errors import UserInputError
from keras_adapters.squad import data
from keras_adapters.squad import evaluate
from keras_adapters.squad import split

DATA = harness.DATA
DEV = DATA / "squad" / "dev-v1.1.json"
VOCAB = DATA / "bert_vocab" / "vocab.txt"
needs_data = pytest.mark.skipif(
    not (DEV.is_file() and VOCAB.is_file()),
    reason=f"real SQuAD dev file / BERT vocab not found under {DATA}")


@pytest.fixture(scope="module")
def dev_json():
  with open(DEV, encoding="utf-8") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def dev(dev_json):
  del dev_json  # read the file once more through the validating reader
  return data.read_squad_file(str(DEV), is_training=False)


@pytest.fixture(scope="module")
def tokenizer():
  return data.CachedTokenizer(str(VOCAB), do_lower_case=True)


def _subset(dev_json, ids):
  """The dev articles cut down to the questions in `ids` (a SQuAD dict)."""
  articles = []
  for article in dev_json["data"]:
    paragraphs = []
    for paragraph in article["paragraphs"]:
      qas = [qa for qa in paragraph["qas"] if qa["id"] in ids]
      if qas:
        paragraphs.append(dict(paragraph, qas=qas))
    if paragraphs:
      articles.append(dict(article, paragraphs=paragraphs))
  return {"version": dev_json["version"], "data": articles}


def _write(tmp_path, name, obj):
  path = tmp_path / name
  path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj,
                  encoding="utf-8")
  return str(path)


# --- reading ------------------------------------------------------------------

@needs_data
def test_reader_matches_model_garden_on_real_dev(dev):
  from official.nlp.data import squad_lib
  reference = squad_lib.read_squad_examples(str(DEV), False, False)
  assert (dev.num_questions, len(dev.examples), dev.skipped) == (10570, 10570,
                                                                 [])
  assert dev.has_answers and dev.version == "1.1" and len(dev.articles) == 48
  for mine, theirs in zip(dev.examples, reference):
    assert (mine.qas_id, mine.question_text, mine.doc_tokens) == (
        theirs.qas_id, theirs.question_text, theirs.doc_tokens)


@needs_data
def test_training_positions_match_model_garden(dev_json, tmp_path):
  # Google's reader needs exactly one answer per training question: give it
  # the first answers of two real articles, then compare with ours.
  from official.nlp.data import squad_lib
  first = copy.deepcopy({"version": "1.1", "data": dev_json["data"][:2]})
  for article in first["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        qa["answers"] = qa["answers"][:1]
  path = _write(tmp_path, "first.json", first)
  reference = squad_lib.read_squad_examples(path, True, False)
  mine = data.read_squad_file(
      _write(tmp_path, "all.json", {"version": "1.1",
                                    "data": dev_json["data"][:2]}), True)
  assert len(mine.examples) == len(reference) == 810 + 247
  for a, b in zip(mine.examples, reference):
    assert (a.qas_id, a.start_position, a.end_position, a.orig_answer_text) \
        == (b.qas_id, b.start_position, b.end_position, b.orig_answer_text)


def _article(dev_json):
  return copy.deepcopy(dev_json["data"][7])  # Southern_California, 180 qs


def _one_error(tmp_path, obj, is_training=True, version_2=False):
  path = _write(tmp_path, "bad.json", obj)
  with pytest.raises(UserInputError) as info:
    data.read_squad_file(path, is_training, version_2)
  message = str(info.value)
  assert "\n" not in message and path in message
  return message


@needs_data
@pytest.mark.parametrize("mutate, expected", [
    (lambda q, p: q.pop("question"), "missing key 'question'"),
    (lambda q, p: q.pop("answers"), "missing key 'answers'"),
    (lambda q, p: q["answers"][0].pop("answer_start"),
     "missing key 'answer_start'"),
    (lambda q, p: q["answers"][0].update(answer_start="5"),
     "'answer_start' must be an integer"),
    (lambda q, p: q["answers"][1].update(text=None),
     "'text' must be a string"),
    (lambda q, p: q.update(is_impossible=True), "--version_2_with_negative"),
    (lambda q, p: p["qas"].append(dict(q)), "duplicate question id"),
])
def test_malformed_question_names_article_and_id(dev_json, tmp_path, mutate,
                                                 expected):
  article = _article(dev_json)
  paragraph = article["paragraphs"][3]
  qa = paragraph["qas"][1]
  mutate(qa, paragraph)
  message = _one_error(tmp_path, {"version": "1.1", "data": [article]})
  assert expected in message
  assert "'Southern_California'" in message and qa["id"] in message


@needs_data
def test_malformed_structure(dev_json, tmp_path):
  article = _article(dev_json)
  del article["paragraphs"][2]["context"]
  message = _one_error(tmp_path, {"data": [article]})
  assert "'Southern_California'" in message and "paragraph #2" in message
  assert "missing key 'context'" in message
  assert "missing key 'data'" in _one_error(tmp_path, {"version": "1.1"})
  assert "line 1, column" in _one_error(tmp_path, '{"data": [{"title": "x"')
  assert "missing key 'paragraphs'" in _one_error(tmp_path,
                                                  {"data": [{"title": "x"}]})
  with pytest.raises(UserInputError, match="not found"):
    data.read_squad_file(str(tmp_path / "nope.json"), False)


@needs_data
def test_bad_answers_and_empty_context_are_counted_skips(dev_json, tmp_path,
                                                         capsys):
  article = _article(dev_json)
  paragraphs = article["paragraphs"]
  total = sum(len(p["qas"]) for p in paragraphs)
  moved = paragraphs[0]["qas"][0]
  moved["answers"][0]["answer_start"] += 3  # no longer points at the text
  outside = paragraphs[1]["qas"][0]
  outside["answers"][0]["answer_start"] = 10 ** 6
  emptied = len(paragraphs[2]["qas"])
  paragraphs[2]["context"] = "  \n "
  path = _write(tmp_path, "skips.json", {"version": "1.1", "data": [article]})

  train = data.read_squad_file(path, is_training=True)
  assert train.num_questions == total
  assert len(train.examples) == total - 2 - emptied
  assert len(train.skipped) == 2 + emptied
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 2 and all(line.startswith("warning: ") for line in err)
  mismatch, empty = err
  assert f"skipped {emptied} question(s) with empty context" in empty
  assert "skipped 2 question(s) with an answer that does not match" in mismatch
  assert moved["id"] in mismatch and "'Southern_California'" in mismatch

  # Prediction does not need answer positions: only the empty context skips.
  predict = data.read_squad_file(path, is_training=False)
  assert len(predict.examples) == total - emptied
  assert "kept 2 question(s)" in capsys.readouterr().err


# --- windows and answers ------------------------------------------------------

LONG = {  # questions on real 540- and 629-word paragraphs, answers far in
    "5726bc1add62a815002e8eaa": "between 3 and 14 hours a week",
    "5726c3da708984140094d0db": "narcotic drugs",
}


@needs_data
def test_long_context_answer_comes_from_a_later_window(dev, tokenizer):
  examples = [e for e in dev.examples if e.qas_id in LONG]
  for e in examples:
    e.orig_answer_text = LONG[e.qas_id]  # as a training reader would set it
    text = " ".join(e.doc_tokens)
    start_char = text.index(LONG[e.qas_id])
    e.start_position = len(text[:start_char].split())
    e.end_position = e.start_position + len(LONG[e.qas_id].split()) - 1
  window = dict(max_seq_length=128, doc_stride=64, max_query_length=64)
  train = data.convert_examples_to_features(examples, tokenizer,
                                            is_training=True, **window)
  predict = data.convert_examples_to_features(examples, tokenizer, **window)
  assert [f.tokens for f in train] == [f.tokens for f in predict]

  start = np.full((len(predict), 128), -10.0)
  end = np.full((len(predict), 128), -10.0)
  for index, example in enumerate(examples):
    windows = [(i, f) for i, f in enumerate(train)
               if f.example_index == index]
    assert len(windows) >= 6
    # The windows cover every original token, in order.
    covered = sorted({o for _, f in windows for o in f.token_to_orig_map.values()})
    assert covered == list(range(len(example.doc_tokens)))
    holding = [(i, f) for i, f in windows if f.start_position > 0]
    assert holding and all(f.doc_span_index >= 3 for _, f in holding)
    for i, f in holding:
      span = " ".join(f.tokens[f.start_position:f.end_position + 1])
      assert span == " ".join(
          tokenizer.tokenize(LONG[example.qas_id]))
      assert f.segment_ids[f.start_position] == 1
      start[i, f.start_position] = end[i, f.end_position] = 10.0

  predictions, nbest, null_odds = data.postprocess(
      examples, predict, start, end, n_best_size=5, max_answer_length=30)
  assert predictions == LONG  # original casing and spacing recovered
  assert not null_odds
  for qid, answer in LONG.items():
    assert 1 <= len(nbest[qid]) <= 5 and nbest[qid][0]["text"] == answer
    assert nbest[qid][0]["probability"] > 0.99


def _rows(batch):
  """(word ids without padding, start, end) of every row of a batch."""
  inputs, (starts, ends) = batch
  return [(tuple(ids[:mask.sum()]), s, e) for ids, mask, s, e in zip(
      inputs["input_word_ids"], inputs["input_mask"], starts, ends)]


@needs_data
def test_length_batched_training_windows_keep_their_labels(tokenizer):
  """run_squad --group_by_length: a pass feeds each window (with its own
  start/end) at most once, in full batches cut to their longest window, far
  below the static 384; a resumed stream skips into the same order.
  --bucket_by_length: each window exactly once per pass at weight 1."""
  squad = data.read_squad_file(str(DEV), is_training=True)
  features = data.convert_examples_to_features(
      squad.examples[:300], tokenizer, is_training=True, max_seq_length=384,
      doc_stride=128, max_query_length=64)
  batch, passes = 8, len(features) // 8
  windows = collections.Counter(_rows(next(
      data.train_dataset(features, len(features)).as_numpy_iterator())))
  stream = data.train_dataset(features, batch, seed=3, group_by_length=True)
  batches = list(stream.take(passes).as_numpy_iterator())
  seen = collections.Counter(row for b in batches for row in _rows(b))
  assert sum(seen.values()) == passes * batch
  assert not seen - windows  # each window at most as often as it exists
  widths = [b[0]["input_mask"].shape[1] for b in batches]
  assert widths == [b[0]["input_mask"].sum(axis=1).max() for b in batches]
  assert sum(widths) < 0.5 * 384 * passes  # SQuAD windows average ~150
  resumed = data.train_dataset(features, batch, seed=3, skip=5,
                               group_by_length=True)
  assert _rows(next(resumed.as_numpy_iterator())) == _rows(batches[5])
  # The bucketed pass: every window once at weight 1, top-ups at weight 0,
  # each batch cut to its bucket's boundary.
  boundaries = [96, 192, 288, 384]
  steps = data.train_steps_per_epoch(features, batch, boundaries)
  bucketed = list(data.train_dataset(
      features, batch, seed=3, bucket_boundaries=boundaries).take(
          steps).as_numpy_iterator())
  weighted = collections.Counter()
  for inputs, labels, weights in bucketed:
    width = inputs["input_mask"].shape[1]
    assert width == min(b for b in boundaries
                        if b >= inputs["input_mask"].sum(axis=1).max())
    weighted.update(row for row, w in zip(_rows((inputs, labels)), weights)
                    if w == 1)
  assert weighted == windows
  # The driver's task passes the flags on: static windows without them.
  from keras_adapters.tasks.squad import SquadOptions, SquadTask  # pylint: disable=g-import-not-at-top
  for grouped, buckets, width in ((False, False, 384), (True, False, None),
                                  (False, boundaries, None)):
    task = SquadTask(SquadOptions(types.SimpleNamespace(
        max_seq_length=384, doc_stride=128, max_query_length=64,
        predict_batch_size=8, n_best_size=20, max_answer_length=30,
        version_2_with_negative=False, null_score_diff_threshold=0.0,
        group_by_length=grouped), buckets))
    task.features["train"] = features
    settings = types.SimpleNamespace(train_batch_size=batch, seed=3)
    ds = task.train_batches(None, settings, 0)
    assert ds.element_spec[0]["input_word_ids"].shape[1] == width
    assert len(ds.element_spec) == (3 if buckets else 2)
    assert task.num_train_batches(None, settings) == (
        steps if buckets else len(features) // batch)


def test_window_flags_are_checked():
  with pytest.raises(UserInputError, match="max_query_length"):
    data.check_window_flags(64, 32, 64)
  with pytest.raises(UserInputError, match="doc_stride"):
    data.check_window_flags(128, 0, 32)
  with pytest.raises(UserInputError, match="out of range"):
    data.check_window_flags(1024, 128, 64)


# --- official metrics ----------------------------------------------------------

@needs_data
def test_first_gold_answers_score_100(dev_json):
  predictions = {qa["id"]: qa["answers"][0]["text"]
                 for a in dev_json["data"] for p in a["paragraphs"]
                 for qa in p["qas"]}
  assert len(predictions) == 10570
  assert evaluate.evaluate_v1(dev_json["data"], predictions) == {
      "exact_match": 100.0, "f1": 100.0}
  v2 = evaluate.evaluate_v2(dev_json["data"], predictions)
  assert (v2["exact"], v2["f1"], v2["total"], v2["HasAns_total"]) == (
      100.0, 100.0, 10570, 10570)


# (prediction, exact match, F1 = max over the gold answers), by hand.
HAND = {
    # gold "Denver Broncos" x3: 1 of 2 gold tokens, precision 1 -> 2/3
    "56be4db0acb8001400a502ec": ("the Broncos", 0, 2 / 3),
    # gold "Carolina Panthers": nothing in common
    "56be4db0acb8001400a502ed": ("Denver Broncos", 0, 0.0),
    # golds "Santa Clara, California" (F1 .5), "Levi's Stadium" (4/7) and
    # "Levi's Stadium in the San Francisco Bay Area at Santa Clara,
    # California." (5 of 11 gold tokens, precision 1: 10/16)
    "56be4db0acb8001400a502ee": ("Levi's Stadium in Santa Clara", 0, 10 / 16),
    # equals the second gold answer "February 7"
    "56be8e613aeaaa14008c90d2": ("February 7", 1, 1.0),
    # punctuation and case dropped: '"golden anniversary"'
    "56be8e613aeaaa14008c90d1": ("Golden Anniversary!", 1, 1.0),
    # the article dropped: "gold"
    "56be4db0acb8001400a502f0": ("The gold", 1, 1.0),
    # "american football conference": 2 of 3 tokens both ways
    "56be8e613aeaaa14008c90d3": ("an American football league", 0, 2 / 3),
    # golds "February 7, 2016" (1/3 recall -> .5) and "February 7" (0)
    "56bea9923aeaaa14008c91bb": ("2016", 0, 0.5),
}
UNANSWERED = "56beace93aeaaa14008c91df"  # no prediction: scores 0 (v1.1)


@needs_data
def test_hand_computed_scores_on_real_questions(dev_json):
  subset = _subset(dev_json, set(HAND) | {UNANSWERED})
  golds = {qa["id"]: [a["text"] for a in qa["answers"]]
           for a in subset["data"] for p in a["paragraphs"] for qa in p["qas"]}
  for qid, (prediction, exact, f1) in HAND.items():
    assert max(evaluate.exact_match_score(prediction, g)
               for g in golds[qid]) == exact
    assert max(evaluate.f1_score(prediction, g)
               for g in golds[qid]) == pytest.approx(f1)
  predictions = {qid: p for qid, (p, _, _) in HAND.items()}
  result = evaluate.evaluate_v1(subset["data"], predictions)
  assert result["exact_match"] == pytest.approx(100 * 3 / 9)
  assert result["f1"] == pytest.approx(
      100 * sum(f for _, _, f in HAND.values()) / 9)
  assert result["f1"] == pytest.approx(100 * 5.458333333 / 9)
  assert evaluate.normalize_answer(" The  Levi's, a Stadium! ") == \
      "levis stadium"


def _official_scores(prediction, golds):
  """(exact match, F1) of one prediction, max over its gold answers, by
  the formula of the official SQuAD v1.1 evaluate script, written out here
  independently of keras_adapters.squad.evaluate: lower case, drop
  punctuation, drop the articles a/an/the, collapse whitespace; F1 over the
  bag of remaining tokens."""
  def normalize(text):
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())

  def f1(pred, gold):
    pred, gold = normalize(pred).split(), normalize(gold).split()
    same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if not same:
      return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)
  return (max(float(normalize(prediction) == normalize(g)) for g in golds),
          max(f1(prediction, g) for g in golds))


@needs_data
def test_the_official_formula_here_gives_the_hand_computed_scores(dev_json):
  """_official_scores (the end-to-end test's independent scorer) on the
  hand-checked real questions of HAND."""
  subset = _subset(dev_json, set(HAND))
  golds = {qa["id"]: [a["text"] for a in qa["answers"]]
           for a in subset["data"] for p in a["paragraphs"] for qa in p["qas"]}
  for qid, (prediction, exact, f1) in HAND.items():
    assert _official_scores(prediction, golds[qid]) == (
        float(exact), pytest.approx(f1)), qid


@needs_data
def test_v2_scores_by_hand(dev_json):
  ids = ["56be4db0acb8001400a502ec", "56be4db0acb8001400a502ed",
         "56be4db0acb8001400a502ef"]
  subset = _subset(dev_json, set(ids))
  for article in subset["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        if qa["id"] == ids[2]:
          qa["answers"], qa["is_impossible"] = [], True
  predictions = {ids[0]: "Denver Broncos", ids[1]: "Carolina", ids[2]: ""}
  result = evaluate.evaluate_v2(subset["data"], predictions)
  assert result == pytest.approx({
      "exact": 200 / 3, "f1": 100 * (1 + 2 / 3 + 1) / 3, "total": 3,
      "HasAns_exact": 50.0, "HasAns_f1": 100 * (1 + 2 / 3) / 2,
      "HasAns_total": 2, "NoAns_exact": 100.0, "NoAns_f1": 100.0,
      "NoAns_total": 1})
  na = {ids[0]: -5.0, ids[1]: -1.0, ids[2]: 3.0}
  result = evaluate.evaluate_v2(subset["data"], predictions, na)
  assert result["best_f1"] == pytest.approx(100 * (1 + 1 + 2 / 3) / 3)
  assert (result["best_f1_thresh"], result["best_exact_thresh"]) == (-1.0,
                                                                     -5.0)
  assert result["best_exact"] == pytest.approx(200 / 3)
  # A v1.1 score needs gold answers: a clear error, not a crash.
  with pytest.raises(UserInputError, match=ids[2]):
    evaluate.evaluate_v1(subset["data"], predictions)


@needs_data
def test_evaluate_command_line(dev_json, tmp_path, capsys):
  subset = _subset(dev_json, set(HAND))
  data_file = _write(tmp_path, "gold.json", subset)
  pred_file = _write(tmp_path, "pred.json",
                     {q: p for q, (p, _, _) in HAND.items()})
  assert evaluate.main([data_file, pred_file]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["exact_match"] == pytest.approx(100 * 3 / 8)
  assert evaluate.main([data_file, str(tmp_path / "none.json")]) == 2
  assert "evaluate: error:" in capsys.readouterr().err


# --- split -----------------------------------------------------------------------

@needs_data
def test_split_is_deterministic_and_disjoint(tmp_path, capsys):
  def run(name, *extra):
    train, held = tmp_path / f"{name}_train.json", tmp_path / f"{name}_eval.json"
    args = ["--input", str(DEV), "--train_out", str(train), "--eval_out",
            str(held)] + list(extra)
    assert split.main(args) == 0
    return train.read_bytes(), held.read_bytes()

  a = run("a", "--eval_articles", "8", "--seed", "0")
  assert a == run("b", "--eval_articles", "8", "--seed", "0")
  assert a != run("c", "--eval_articles", "8", "--seed", "1")
  out = capsys.readouterr().out
  assert "eval: " in out and "8 articles" in out
  train, held = (json.loads(x) for x in a)
  titles = [x["title"] for x in train["data"]], [x["title"] for x in held["data"]]
  assert len(titles[0]) == 40 and len(titles[1]) == 8
  assert not set(titles[0]) & set(titles[1])
  count = lambda d: sum(len(p["qas"]) for x in d["data"] for p in x["paragraphs"])
  assert count(train) + count(held) == 10570
  assert train["version"] == held["version"] == "1.1"

  small, _ = run("d", "--eval_articles", "1", "--train_articles", "2")
  assert len(json.loads(small)["data"]) == 2
  with pytest.raises(SystemExit):
    split.main(["--input", str(DEV)])
  assert split.main(["--input", str(DEV), "--train_out", "x", "--eval_out",
                     "y", "--eval_articles", "48"]) == 2
  assert "eval_articles must be in 1..47" in capsys.readouterr().err


# --- model -------------------------------------------------------------------------

def _tiny_encoder(vocab_size=30522):
  return harness.tiny_encoder(vocab_size=vocab_size, max_sequence_length=128,
                              inner_activation="gelu")


def test_span_labeler_modes():
  from keras_adapters.squad import model as squad_model
  counts = {}
  for mode in ("adapter", "full", "head"):
    model, encoder = squad_model.build_span_labeler(
        _tiny_encoder(100), AdapterConfig(fine_tune_mode=mode,
                                          adapter_size=4))
    names = [v.name for v in model.trainable_variables]
    counts[mode] = sum(v.shape.num_elements() for v in model.trainable_variables)
    assert not any("pooler" in n for n in names), names
    assert any(n.startswith("predictions/transform/logits/") for n in names)
    ids = np.ones((2, 16), np.int32)
    start, end = model(dict(input_word_ids=ids, input_mask=ids,
                            input_type_ids=0 * ids))
    assert start.shape == end.shape == (2, 16)
  # span head: dense 32 -> 2
  assert counts["head"] == 32 * 2 + 2
  # adapters: 2 blocks x 2 adapters x (32*4 + 4 + 4*32 + 32); LayerNorms:
  # embedding + 2 per block, 64 params each
  assert counts["adapter"] == counts["head"] + 4 * 292 + 5 * 64
  assert counts["full"] > counts["adapter"]
  # leave_out=[0]: block 1's 2 adapters and 2 LayerNorms only
  model, encoder = squad_model.build_span_labeler(
      _tiny_encoder(100), AdapterConfig(adapter_size=4, leave_out=[0]))
  assert sum(v.shape.num_elements() for v in model.trainable_variables) == (
      counts["head"] + 2 * 292 + 2 * 64)
  assert [len(b.adapters) for b in encoder.transformer_layers] == [0, 2]


# --- run_squad.py end to end ---------------------------------------------------------

def _run_squad(*args, timeout=900, log_level="2"):
  return harness.run_driver(
      "run_squad.py", args, timeout=timeout, env=harness.driver_env(
          TF_CPP_MIN_LOG_LEVEL=log_level, CUDA_VISIBLE_DEVICES=""))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  """A 2-layer, 32-wide Model Garden checkpoint with the real BERT vocab."""
  import tensorflow as tf
  path = tmp_path_factory.mktemp("tiny")
  encoder = _tiny_encoder()
  tf.train.Checkpoint(encoder=encoder).write(str(path / "encoder"))
  (path / "encoder.json").write_text(json.dumps(encoder.get_config(),
                                                indent=1))
  (path / "vocab.txt").write_bytes(VOCAB.read_bytes())
  return path


@pytest.mark.large
@needs_data
def test_run_squad_jit_compile_compiles_with_xla(dev_json, tiny_checkpoint,
                                                 tmp_path):
  """--jit_compile reaches model.compile: TF logs its one-time 'Compiled
  cluster using XLA' line, and the run (in length buckets, a fixed shape
  set, the TPU way) still saves its pack."""
  train = {"version": "1.1", "data": [dev_json["data"][29]]}
  result = _run_squad(
      "--do_train", "--jit_compile", "--bucket_by_length", "--train_file",
      _write(tmp_path, "train.json", train), "--init_checkpoint",
      str(tiny_checkpoint), "--max_seq_length", "96", "--doc_stride", "48",
      "--max_query_length", "32", "--train_batch_size", "16",
      "--num_train_epochs", "0.1", "--output_dir", str(tmp_path / "out"),
      log_level="0")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "jit_compile=True" in result.stdout
  assert "Compiled cluster using XLA" in result.stderr
  assert (tmp_path / "out" / "adapter_pack.npz").is_file()


def _check_v1_outputs(out, eu, qids):
  """SQuAD 1.1 prediction files in `out`, scored independently; returns the
  n-best lists."""
  predictions = json.loads((out / "predictions.json").read_text())
  nbest = json.loads((out / "nbest_predictions.json").read_text())
  assert sorted(predictions) == sorted(qids) == sorted(nbest)
  assert all(1 <= len(v) <= 4 for v in nbest.values())
  assert all(predictions[q] == nbest[q][0]["text"] for q in qids)
  results = dict(line.split(" = ") for line in
                 (out / "eval_results.txt").read_text().splitlines())
  # Scored here with the official formula (written out in this file and
  # checked on hand-computed cases), not with the evaluate() the driver uses.
  golds = {qa["id"]: [a["text"] for a in qa["answers"]]
           for p in eu["paragraphs"] for qa in p["qas"]}
  scores = [_official_scores(predictions[q], golds[q]) for q in qids]
  assert float(results["exact_match"]) == pytest.approx(
      100 * sum(em for em, _ in scores) / len(qids), abs=1e-5)
  assert float(results["f1"]) == pytest.approx(
      100 * sum(f1 for _, f1 in scores) / len(qids), abs=1e-5)
  assert int(results["global_step"]) >= 1
  assert not (out / "null_odds.json").exists()
  return nbest


def _check_v2_outputs(out2, nbest, qids):
  """SQuAD 2.0 files in `out2`, and the pack's best non-null spans equal to
  the trained model's (`nbest`)."""
  null_odds = json.loads((out2 / "null_odds.json").read_text())
  assert sorted(null_odds) == sorted(qids)
  text = (out2 / "eval_results.txt").read_text()
  for key in ("exact", "f1", "HasAns_exact", "NoAns_total = 1", "best_f1",
              "best_f1_thresh"):
    assert key in text
  # The pack reproduces the trained model: same best non-null spans.
  nbest2 = json.loads((out2 / "nbest_predictions.json").read_text())
  # (An untrained model may have no valid span among the top-4 starts x
  # ends: Google's code then answers the nonce "empty" (v1.1) or "" (v2.0).)
  found = 0
  for qid in qids:
    spans = [e for e in nbest2[qid] if e["text"]]
    if nbest[qid][0]["text"] == "empty" and nbest[qid][0]["start_logit"] == 0:
      assert not spans
      continue
    found += 1
    assert spans[0]["text"] == nbest[qid][0]["text"]
    assert spans[0]["start_logit"] == pytest.approx(
        nbest[qid][0]["start_logit"], abs=1e-4)
  assert found >= 5


@pytest.mark.large
@needs_data
def test_run_squad_end_to_end(dev_json, tiny_checkpoint, tmp_path):
  # Train on one small real article (batches grouped by length); predict on
  # a long-paragraph article slice (so several windows per question), then
  # predict again in SQuAD 2.0 mode from the saved checkpoint.
  train = {"version": "1.1", "data": [dev_json["data"][29]]}  # Construction
  eu = copy.deepcopy(dev_json["data"][15])  # European_Union_law
  eu["paragraphs"] = eu["paragraphs"][:6]
  predict = {"version": "1.1", "data": [eu]}
  qids = [qa["id"] for p in eu["paragraphs"] for qa in p["qas"]]
  out = tmp_path / "out"
  common = ["--init_checkpoint", str(tiny_checkpoint), "--max_seq_length",
            "96", "--doc_stride", "48", "--max_query_length", "32",
            "--predict_batch_size", "64", "--output_dir", str(out),
            "--n_best_size", "4"]
  result = _run_squad(
      "--do_train", "--do_predict", "--train_file",
      _write(tmp_path, "train.json", train), "--predict_file",
      _write(tmp_path, "predict.json", predict), "--train_batch_size", "16",
      "--num_train_epochs", "0.1", "--save_checkpoints_steps", "2",
      "--group_by_length", *common)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Saved the trained variables" in result.stdout
  nbest = _check_v1_outputs(out, eu, qids)

  # SQuAD 2.0 mode, prediction only, from the adapter pack on the backbone
  # (another output_dir: no checkpoint there).
  eu2 = copy.deepcopy(eu)
  eu2["paragraphs"][0]["qas"][0].update(answers=[], is_impossible=True)
  out2 = tmp_path / "out2"
  common[common.index(str(out))] = str(out2)
  result = _run_squad("--do_predict", "--version_2_with_negative",
                      "--adapter_pack", str(out / "adapter_pack.npz"),
                      "--predict_file", _write(tmp_path, "v2.json",
                                               {"version": "v2.0",
                                                "data": [eu2]}), *common)
  assert result.returncode == 0, result.stderr[-3000:]
  _check_v2_outputs(out2, nbest, qids)


@pytest.mark.large
@needs_data
def test_run_squad_input_errors_are_one_line(dev_json, tmp_path):
  article = _article(dev_json)
  del article["paragraphs"][0]["qas"][2]["question"]
  bad = _write(tmp_path, "bad.json", {"version": "1.1", "data": [article]})
  result = _run_squad("--do_predict", "--predict_file", bad, "--output_dir",
                      str(tmp_path / "o"))
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("run_squad.py: error: ")
  assert article["paragraphs"][0]["qas"][2]["id"] in lines[-1]
  assert "Traceback" not in result.stderr
  result = _run_squad("--do_train", "--output_dir", str(tmp_path / "o"))
  assert result.returncode == 2
  assert "--do_train needs --train_file" in result.stderr
