"""SQuAD JSON -> validated examples -> doc_stride windows -> answer texts.

Reading follows Google BERT's / Model Garden's `read_squad_examples` exactly
(whitespace split of the context, character -> word offsets, the "could not
find answer" check), with two differences:

* every input problem is reported instead of crashing: a structural one
  (missing key, wrong type, duplicate id, not JSON) raises `UserInputError`
  with a one-line message naming the file, article and question id; a question
  that cannot be used (empty context; for training: no answer, an answer_start
  that does not point at the answer text) is skipped, counted, and reported in
  one warning line per reason;
* for training, the *first* answer of a question is used when it has several
  (Google's reader refuses such files; the only SQuAD file here is a dev file
  split into train/eval, whose questions have up to 5 answers).

Windows (`convert_examples_to_features`) and answer extraction
(`postprocess`) are Model Garden's `squad_lib` functions, i.e. Google BERT's
run_squad.py logic, with the wordpiece tokenizer `tokenization.FullTokenizer`.
"""

import collections
import json
import os
import sys

import numpy as np

from keras_adapters.data.limits import MAX_SEQ_LENGTH_LIMIT
from keras_adapters.errors import UserInputError


SquadFile = collections.namedtuple(
    "SquadFile", "path version articles examples skipped num_questions "
    "has_answers")
SquadFile.__doc__ = """A read SQuAD file.

  articles: the JSON "data" list (validated), as the official evaluation
    scripts take it; examples: `squad_lib.SquadExample`s in file order;
  skipped: [(qas_id, reason)] of questions left out; has_answers: every
    question has gold answers (an "answers" list, non-empty for v1.1), so
    predictions can be evaluated.
"""

RawResult = collections.namedtuple("RawResult",
                                   "unique_id start_logits end_logits")


def _is_whitespace(c):
  # As squad_lib.read_squad_examples (and Google BERT's run_squad.py).
  return c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F


def split_context(text):
  """(doc_tokens, char_to_word_offset) as Google BERT's reader makes them."""
  doc_tokens, char_to_word_offset = [], []
  prev_is_whitespace = True
  for c in text:
    if _is_whitespace(c):
      prev_is_whitespace = True
    else:
      if prev_is_whitespace:
        doc_tokens.append(c)
      else:
        doc_tokens[-1] += c
      prev_is_whitespace = False
    char_to_word_offset.append(len(doc_tokens) - 1)
  return doc_tokens, char_to_word_offset


def load_json(path, what="SQuAD file"):
  """The parsed JSON at `path`, or a one-line UserInputError."""
  if not path or not os.path.isfile(path):
    raise UserInputError(f"{what} {path} not found")
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise UserInputError(f"{path}: not valid JSON (line {e.lineno}, column "
                         f"{e.colno}: {e.msg}); truncated? fix or re-download "
                         "it") from None
  except UnicodeDecodeError as e:
    raise UserInputError(f"{path}: not UTF-8 text ({e.reason} at byte "
                         f"{e.start}); re-save it as UTF-8") from None


class _Where:
  """Names the place in the file for error messages."""

  def __init__(self, path):
    self.path, self.article, self.question = path, None, None

  def fail(self, problem):
    where = [self.path]
    if self.article is not None:
      where.append(f"article {self.article}")
    if self.question is not None:
      where.append(f"question {self.question}")
    raise UserInputError(f"{', '.join(where)}: {problem}; fix the file "
                         "(SQuAD layout: data[].paragraphs[].context/qas[]."
                         "id/question/answers[].text/answer_start)")


def _need(where, obj, key, kind, kind_name):
  if not isinstance(obj, dict):
    where.fail(f"expected a JSON object holding {key!r}, got "
               f"{type(obj).__name__}")
  if key not in obj:
    where.fail(f"missing key {key!r}")
  value = obj[key]
  if not isinstance(value, kind) or isinstance(value, bool):
    where.fail(f"{key!r} must be {kind_name}, got {type(value).__name__} "
               f"{str(value)[:40]!r}")
  return value


class _Reader:
  """What reading one SQuAD file collects, question by question."""

  def __init__(self, path, is_training, version_2_with_negative):
    self.where = _Where(path)
    self.is_training, self.version_2 = is_training, version_2_with_negative
    self.examples, self.skipped, self.notes, self.seen = [], [], [], set()
    self.num_questions, self.has_answers = 0, True

  def skip(self, qas_id, kind, detail=None, kept=False):
    (self.notes if kept else self.skipped).append(
        (qas_id, kind, f"article {self.where.article}, question {qas_id}"
         + (f": {detail}" if detail else "")))

  def answers(self, qa):
    """(answers, is_impossible) of a question, checked."""
    where = self.where
    if "answers" in qa or self.is_training:
      answers = _need(where, qa, "answers", list, "a list")
      if not answers and not self.version_2:
        self.has_answers = False  # v1.1 scores need a gold answer
    else:
      answers, self.has_answers = [], False
    for answer in answers:
      _need(where, answer, "text", str, "a string")
      _need(where, answer, "answer_start", int, "an integer")
    is_impossible = qa.get("is_impossible", False)
    if not isinstance(is_impossible, bool):
      where.fail(f"'is_impossible' must be true or false, got "
                 f"{is_impossible!r}")
    if is_impossible and not self.version_2:
      where.fail("unanswerable question (is_impossible) in SQuAD v1.1 "
                 "mode; pass --version_2_with_negative for SQuAD 2.0 data")
    if self.version_2 and "is_impossible" not in qa:
      is_impossible = not answers
    return answers, is_impossible

  def positions(self, qas_id, answers, context, doc_tokens, offsets):
    """(start word, end word, answer text) to train on, or None (skipped)."""
    from official.nlp.tools import tokenization  # pylint: disable=g-import-not-at-top
    if not answers:
      self.skip(qas_id, "no answer to train on; unanswerable questions need "
                "--version_2_with_negative")
      return None
    mismatch = _answer_mismatch(context, answers[:1])
    if mismatch:
      self.skip(qas_id, "an answer that does not match the context", mismatch)
      return None
    text, offset = answers[0]["text"], answers[0]["answer_start"]
    start, end = offsets[offset], offsets[offset + len(text) - 1]
    actual = " ".join(doc_tokens[start:end + 1])
    cleaned = " ".join(tokenization.whitespace_tokenize(text))
    if actual.find(cleaned) == -1:
      self.skip(qas_id, "answer text not found in the whitespace-split "
                "context", f"{actual!r} vs {cleaned!r}")
      return None
    return start, end, text

  def question(self, qa, context, doc_tokens, offsets):
    """Checks one question and keeps it as a SquadExample (or skips it)."""
    from official.nlp.data import squad_lib  # pylint: disable=g-import-not-at-top
    qas_id = str(_need(self.where, qa, "id", (str, int), "a string"))
    self.where.question = qas_id
    if qas_id in self.seen:
      self.where.fail("duplicate question id")
    self.seen.add(qas_id)
    self.num_questions += 1
    question = _need(self.where, qa, "question", str, "a string")
    answers, is_impossible = self.answers(qa)
    if not doc_tokens:
      self.skip(qas_id, "empty context")
      return
    span = (None, None, None)
    if self.is_training:
      span = (-1, -1, "") if is_impossible else self.positions(
          qas_id, answers, context, doc_tokens, offsets)
      if span is None:
        return
    elif _answer_mismatch(context, answers):
      # Prediction does not use answer positions and evaluation compares
      # texts only: keep the question, but say so.
      self.skip(qas_id, "an answer that does not match the context (kept: "
                "not used for prediction or evaluation)",
                _answer_mismatch(context, answers), kept=True)
    self.examples.append(squad_lib.SquadExample(
        qas_id=qas_id, question_text=question, doc_tokens=doc_tokens,
        orig_answer_text=span[2], start_position=span[0],
        end_position=span[1], is_impossible=is_impossible))


def read_squad_file(path, is_training, version_2_with_negative=False,
                    warn=True):
  """Reads and validates the SQuAD JSON file at `path`.

  Args:
    path: a SQuAD v1.1 or v2.0 JSON file.
    is_training: build answer positions (start/end word of the first answer,
      or -1/-1 for an unanswerable v2.0 question).
    version_2_with_negative: the file may hold unanswerable questions
      (`is_impossible`); without it such a question is an error.
    warn: print one warning line per kind of skipped question to stderr.

  Returns:
    a `SquadFile`.

  Raises:
    UserInputError: naming the file, article and question id of the first
      structural problem.
  """
  raw = load_json(path)
  reader = _Reader(path, is_training, version_2_with_negative)
  where = reader.where
  articles = _need(where, raw, "data", list, "a list of articles")
  for a, article in enumerate(articles):
    where.article, where.question = f"#{a}", None
    title = article.get("title") if isinstance(article, dict) else None
    if isinstance(title, str):
      where.article = f"#{a} {title!r}"
    paragraphs = _need(where, article, "paragraphs", list, "a list")
    for p, paragraph in enumerate(paragraphs):
      where.question = f"(paragraph #{p})"
      context = _need(where, paragraph, "context", str, "a string")
      qas = _need(where, paragraph, "qas", list, "a list")
      doc_tokens, char_to_word_offset = split_context(context)
      for qa in qas:
        where.question = f"(paragraph #{p})"
        reader.question(qa, context, doc_tokens, char_to_word_offset)
  if warn:
    _warn(path, "skipped", reader.skipped)
    _warn(path, "kept", reader.notes)
  skipped = [(qas_id, kind) for qas_id, kind, _ in reader.skipped]
  return SquadFile(path, str(raw.get("version", "?")), articles,
                   reader.examples, skipped, reader.num_questions,
                   reader.has_answers)


def _answer_mismatch(context, answers):
  for answer in answers:
    text, start = answer["text"], answer["answer_start"]
    if not text.strip():
      return "empty answer text"
    if not 0 <= start <= len(context) - len(text):
      return f"answer_start {start} is outside the context"
    if context[start:start + len(text)] != text:
      return (f"context[{start}:] is {context[start:start + 30]!r}, not "
              f"{text[:30]!r}")
  return None


def _warn(path, action, items):
  """One stderr line per kind: count and the first occurrence."""
  by_kind = collections.OrderedDict()
  for _, kind, detail in items:
    by_kind.setdefault(kind, []).append(detail)
  for kind, details in by_kind.items():
    print(f"warning: {path}: {action} {len(details)} question(s) with "
          f"{kind}; first: {details[0]}", file=sys.stderr)


def check_window_flags(max_seq_length, doc_stride, max_query_length):
  if not 4 <= max_seq_length <= MAX_SEQ_LENGTH_LIMIT:
    raise UserInputError(f"max_seq_length {max_seq_length} out of range "
                         f"4..{MAX_SEQ_LENGTH_LIMIT}; use e.g. 384")
  if max_query_length < 1 or max_seq_length <= max_query_length + 3:
    raise UserInputError(
        f"max_seq_length {max_seq_length} must exceed max_query_length "
        f"{max_query_length} + 3 ([CLS] and 2 x [SEP]); lower "
        "--max_query_length or raise --max_seq_length")
  if doc_stride < 1:
    raise UserInputError(f"doc_stride must be >= 1, got {doc_stride}")


class CachedTokenizer:
  """`tokenization.FullTokenizer` that remembers each text's wordpieces.

  Contexts are re-tokenized for every question on them; the cache makes
  feature creation several times faster without changing its output.
  """

  def __init__(self, vocab_file, do_lower_case):
    from official.nlp.tools import tokenization  # pylint: disable=g-import-not-at-top
    if not vocab_file or not os.path.isfile(vocab_file):
      raise UserInputError(f"vocab file {vocab_file} not found; pass the "
                           "model's vocab.txt (--vocab_file)")
    self._tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)
    missing = [t for t in ("[CLS]", "[SEP]", "[UNK]")
               if t not in self._tokenizer.vocab]
    if missing:
      raise UserInputError(f"{vocab_file} lacks {', '.join(missing)}; it is "
                           "not a BERT wordpiece vocab")
    self.vocab = self._tokenizer.vocab
    self._cache = {}

  def tokenize(self, text):
    pieces = self._cache.get(text)
    if pieces is None:
      pieces = self._cache[text] = tuple(self._tokenizer.tokenize(text))
    return list(pieces)

  def convert_tokens_to_ids(self, tokens):
    return self._tokenizer.convert_tokens_to_ids(tokens)


def convert_examples_to_features(examples, tokenizer, max_seq_length=384,
                                 doc_stride=128, max_query_length=64,
                                 is_training=False):
  """Model Garden's (Google BERT's) doc_stride windows of each example.

  Returns a list of `squad_lib.InputFeatures` with `unique_id`,
  `example_index`, `doc_span_index`, `tokens`, `token_to_orig_map` (window
  position -> original whitespace token), `token_is_max_context`, the padded
  `input_ids`/`input_mask`/`segment_ids`, and for training the
  `start_position`/`end_position` of the answer in that window (0/0, i.e.
  [CLS], in windows that do not hold it).
  """
  from official.nlp.data import squad_lib  # pylint: disable=g-import-not-at-top
  check_window_flags(max_seq_length, doc_stride, max_query_length)
  features = []

  def collect(feature, is_padding=False):
    if not is_padding:
      features.append(feature)

  squad_lib.convert_examples_to_features(
      examples=examples, tokenizer=tokenizer, max_seq_length=max_seq_length,
      doc_stride=doc_stride, max_query_length=max_query_length,
      is_training=is_training, output_fn=collect, batch_size=1)
  return features


def feature_arrays(features):
  """(inputs dict, (start_positions, end_positions)) as int32 arrays."""
  inputs = dict(
      input_word_ids=np.array([f.input_ids for f in features], np.int32),
      input_mask=np.array([f.input_mask for f in features], np.int32),
      input_type_ids=np.array([f.segment_ids for f in features], np.int32))
  labels = (np.array([f.start_position or 0 for f in features], np.int32),
            np.array([f.end_position or 0 for f in features], np.int32))
  return inputs, labels


def train_dataset(features, batch_size, seed=0, skip=0,
                  group_by_length=False, bucket_boundaries=False):
  """Shuffled (every epoch anew, fixed by `seed`), repeated, full batches;
  `skip` batches dropped so a resumed run continues where it stopped. With
  `group_by_length`, batches of windows of similar length, each cut to its
  longest; with `bucket_boundaries`, each batch one length bucket, cut to
  its boundary, with sample weights (keras_adapters/data/bucketing.py)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras_adapters.data import bucketing  # pylint: disable=g-import-not-at-top
  inputs, labels = feature_arrays(features)
  ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
  if bucket_boundaries:
    ds = bucketing.training_batches(ds, len(features), bucket_boundaries,
                                    batch_size, seed)
  elif group_by_length:
    ds = bucketing.grouped_batches(ds, len(features), batch_size, seed)
  else:
    ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(batch_size, drop_remainder=True)
  if skip:
    ds = ds.skip(skip)
  return ds.prefetch(tf.data.AUTOTUNE)


def train_steps_per_epoch(features, batch_size, bucket_boundaries=False):
  """Batches per pass of `train_dataset`."""
  if not bucket_boundaries:
    return len(features) // batch_size
  from keras_adapters.data import bucketing  # pylint: disable=g-import-not-at-top
  lengths = [sum(f.input_mask) for f in features]
  return bucketing.steps_per_epoch(lengths, bucket_boundaries, batch_size)


def predict_dataset(features, batch_size):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  inputs, _ = feature_arrays(features)
  return tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)


def postprocess(examples, features, start_logits, end_logits, n_best_size=20,
                max_answer_length=30, do_lower_case=True,
                version_2_with_negative=False, null_score_diff_threshold=0.0):
  """Answer texts from the windows' logits (Model Garden's
  `postprocess_output`): the best valid span over all windows of a question,
  scored at the window where its start token has maximal context.

  Args:
    examples, features: as read / converted (features in `start_logits` row
      order).
    start_logits, end_logits: [num_features, max_seq_length] arrays.

  Returns:
    (predictions {id: text}, nbest {id: [{text, probability, start_logit,
    end_logit}]}, null_odds {id: null score - best non-null score}; empty
    unless version_2_with_negative).
  """
  from official.nlp.data import squad_lib  # pylint: disable=g-import-not-at-top
  if n_best_size < 1 or max_answer_length < 1:
    raise UserInputError("n_best_size and max_answer_length must be >= 1")
  if len(features) != len(start_logits) or len(features) != len(end_logits):
    raise ValueError(f"{len(features)} features but {len(start_logits)} / "
                     f"{len(end_logits)} rows of logits")
  results = [RawResult(f.unique_id, np.asarray(s, np.float64).tolist(),
                       np.asarray(e, np.float64).tolist())
             for f, s, e in zip(features, start_logits, end_logits)]
  predictions, nbest, null_odds = squad_lib.postprocess_output(
      examples, features, results, n_best_size=n_best_size,
      max_answer_length=max_answer_length, do_lower_case=do_lower_case,
      version_2_with_negative=version_2_with_negative,
      null_score_diff_threshold=null_score_diff_threshold)
  return predictions, nbest, null_odds
