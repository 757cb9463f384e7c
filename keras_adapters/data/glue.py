"""GLUE processors (official TSV layout) and a generic CSV/TSV task.

Column indices, header skipping and label lists follow Google BERT's
``run_classifier.py`` and the TSV-era processors of Model Garden's
``official/nlp/data/classifier_data_lib.py``. Usage::

  processor = get_processor("mrpc")
  train = processor.get_examples("glue_data/MRPC", "train")  # list[Example]

Every problem with the data raises a one-line `UserInputError` naming the file,
the line and the fix.
"""

import codecs
import csv
import dataclasses
import io
import math
import os
import re
from typing import NamedTuple, Optional, Sequence, Union

from keras_adapters.errors import UserInputError

csv.field_size_limit(2**31 - 1)  # a few GLUE texts are long; max C long on all platforms

SPLITS = ("train", "dev", "test")
# Far above any real sentence or passage (only max_seq_length wordpieces are
# kept); a longer "text" is rows merged by a broken line break or quote.
MAX_TEXT_CHARS = 100_000


class Example(NamedTuple):
  """One example: label is a str (classification), float (regression) or None (test)."""
  guid: str
  text_a: str
  text_b: Optional[str]
  label: Union[str, float, None]


@dataclasses.dataclass(frozen=True)
class _Spec:
  """Everything known about one GLUE task, in one place.

  Columns are 0-based; label_col -1 means the last column. `metric` is the
  task's metric beside accuracy (or the regression metrics); `submission`
  the file name the GLUE leaderboard expects; `tfds` the TFDS glue config,
  its text features and label class names (`tfds_classes[i]` is the TSV
  label `tfds_tsv_labels[i]`).
  """
  labels: Optional[tuple]  # None: regression
  text_cols: tuple  # train/dev
  label_col: int  # train/dev
  test_cols: tuple
  submission: str
  tfds: str
  tfds_texts: tuple
  tfds_classes: Optional[tuple] = None
  tfds_tsv_labels: Optional[tuple] = None
  metric: Optional[str] = None  # "f1" (positive label "1"), "matthews_corr"
  header: bool = True  # train/dev start with a header row (test files always do)
  dev_file: str = "dev.tsv"
  test_file: str = "test.tsv"
  folder: str = ""  # the task's folder in glue_data
  tfds_splits: tuple = ("train", "validation", "test")


_BIN = ("0", "1")
_ENT = ("entailment", "not_entailment")
_NLI = ("contradiction", "entailment", "neutral")
_NLI_TFDS = ("entailment", "neutral", "contradiction")
_PAIR = ("sentence1", "sentence2")
_GLUE = {
    "cola": _Spec(_BIN, (3,), 1, (1,), "CoLA", "cola", ("sentence",),
                  ("unacceptable", "acceptable"), _BIN,
                  metric="matthews_corr", header=False, folder="CoLA"),
    "sst-2": _Spec(_BIN, (0,), 1, (1,), "SST-2", "sst2", ("sentence",),
                   ("negative", "positive"), _BIN, folder="SST-2"),
    "mrpc": _Spec(_BIN, (3, 4), 0, (3, 4), "MRPC", "mrpc", _PAIR,
                  ("not_equivalent", "equivalent"), _BIN, metric="f1",
                  folder="MRPC"),
    "sts-b": _Spec(None, (7, 8), 9, (7, 8), "STS-B", "stsb", _PAIR,
                   folder="STS-B"),
    "qqp": _Spec(_BIN, (3, 4), 5, (1, 2), "QQP", "qqp",
                 ("question1", "question2"), ("not_duplicate", "duplicate"),
                 _BIN, metric="f1", folder="QQP"),
    "mnli": _Spec(_NLI, (8, 9), -1, (8, 9), "MNLI-m", "mnli",
                  ("premise", "hypothesis"), _NLI_TFDS, _NLI_TFDS,
                  dev_file="dev_matched.tsv", test_file="test_matched.tsv",
                  folder="MNLI", tfds_splits=("train", "validation_matched",
                                              "test_matched")),
    "mnli-mm": _Spec(_NLI, (8, 9), -1, (8, 9), "MNLI-mm", "",
                     ("premise", "hypothesis"), dev_file="dev_mismatched.tsv",
                     test_file="test_mismatched.tsv", folder="MNLI"),
    "qnli": _Spec(_ENT, (1, 2), 3, (1, 2), "QNLI", "qnli",
                  ("question", "sentence"), _ENT, _ENT, folder="QNLI"),
    "rte": _Spec(_ENT, (1, 2), 3, (1, 2), "RTE", "rte", _PAIR, _ENT, _ENT,
                 folder="RTE"),
    "wnli": _Spec(_BIN, (1, 2), 3, (1, 2), "WNLI", "wnli", _PAIR,
                  ("not_entailment", "entailment"), _BIN, folder="WNLI"),
}
TASK_NAMES = tuple(_GLUE) + ("generic",)
# Normalized (lower case, no "-", "_" or spaces) alias -> canonical name.
_ALIASES = {**{re.sub(r"[-_ ]", "", n): n for n in TASK_NAMES},
            "mnlim": "mnli", "mnlimatched": "mnli", "mnlimismatched": "mnli-mm",
            "csv": "generic", "tsv": "generic"}
GENERIC_OPTIONS = ("text_a_column", "text_b_column", "label_column",
                   "label_list", "is_regression", "delimiter", "has_header")


def canonical_task_name(task_name: str) -> str:
  """Maps any accepted spelling ("SST2", "mnli_mismatched", "csv") to its canonical name."""
  name = _ALIASES.get(re.sub(r"[-_ ]", "", str(task_name).lower()))
  if name is None:
    raise UserInputError(f"unknown task_name {task_name!r}; known: {', '.join(TASK_NAMES)}")
  return name


def spec(task_name: str) -> _Spec:
  """The facts of a GLUE task (any accepted spelling)."""
  name = canonical_task_name(task_name)
  if name == "generic":
    raise UserInputError("the generic task has no GLUE facts; pass its "
                         "layout (text columns, labels) yourself")
  return _GLUE[name]


def get_processor(task_name: str, **generic_options) -> "Processor":
  """Returns the processor for a GLUE task or, for "generic"/"csv", a `GenericProcessor`.

  `generic_options` are the keyword arguments of `GenericProcessor` (only for "generic").
  """
  name = canonical_task_name(task_name)
  unknown = sorted(set(generic_options) - set(GENERIC_OPTIONS))
  if unknown:
    raise UserInputError(f"unknown generic task option(s) {unknown}; known: {', '.join(GENERIC_OPTIONS)}")
  if name == "generic":
    return GenericProcessor(**generic_options)
  if generic_options:
    raise UserInputError(f"options {sorted(generic_options)} apply only to task_name 'generic', "
                         f"not {name!r}; drop them or use task_name='generic'")
  return Processor(name, _GLUE[name])


def _read_rows(path: str, delimiter: str, quoting: int) -> list:
  """Returns [(line_number, row)] for the non-blank lines of a UTF-8 file (BOM stripped)."""
  with open(path, "rb") as f:
    data = f.read()
  if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
    raise UserInputError(f"{path} is UTF-16 (it starts with the byte-order mark "
                         f"{data[:2].hex(' ').upper()}); re-save the file as UTF-8")
  try:
    text = data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    offset = e.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    line = data[:offset].count(b"\n") + 1
    raise UserInputError(f"{path} line {line} (byte offset {offset}): byte {data[offset:offset + 1]!r} "
                         f"is not valid UTF-8; re-save the file as UTF-8") from None
  if "\ufeff" in text:  # a leading UTF-8 BOM is fine (stripped above), one inside is not
    line = text[:text.index("\ufeff")].count("\n") + 1
    raise UserInputError(f"{path} line {line}: byte-order mark (U+FEFF) inside the file, e.g. "
                         f"from concatenating files; delete it (and any repeated header)")
  quotechar = None if quoting == csv.QUOTE_NONE else '"'
  reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                      quoting=quoting, quotechar=quotechar)
  try:
    return [(reader.line_num, row) for row in reader if row]
  except csv.Error as e:
    raise UserInputError(f"{path} line {reader.line_num}: unreadable row ({e}); fix the row") from None


def _check_split_and_dir(split: str, data_dir: str, holding: str):
  if split not in SPLITS:
    raise UserInputError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
  if not os.path.isdir(data_dir):
    raise UserInputError(f"data_dir {data_dir} does not exist or is not a directory; "
                         f"pass the folder holding {holding} (--data_dir)")


class Processor:
  """Reads one GLUE task's official TSV files into `Example`s.

  Attributes: name (canonical task name), labels (list of str, None for
  regression), is_regression, is_pair (two texts per example), metric (the
  metric beside accuracy, or None), submission_name (GLUE leaderboard file
  stem).
  """

  def __init__(self, name: str, spec: _Spec):
    self.name = name
    self._spec = spec
    self.is_regression = spec.labels is None
    self.is_pair = len(spec.text_cols) == 2
    self.metric = spec.metric
    self.submission_name = spec.submission
    self._labels = None if spec.labels is None else list(spec.labels)

  @property
  def labels(self) -> Optional[list]:
    return self._labels

  def get_examples(self, data_dir: str, split: str) -> list:
    """Returns the examples of split "train", "dev" or "test" (test: label None)."""
    examples = self._parse(self._path(data_dir, split), split)
    if split != "test":
      self._check_labels(examples, self._label_list(data_dir))
    return [e for e, _, _ in examples]

  def _label_list(self, data_dir):
    return self._labels

  def _path(self, data_dir: str, split: str) -> str:
    _check_split_and_dir(split, data_dir, f"the {self.name} files")
    name = {"train": "train.tsv", "dev": self._spec.dev_file, "test": self._spec.test_file}[split]
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
      raise UserInputError(f"{path} not found: the {self.name} {split} split needs this file; "
                           f"check --data_dir / --task_name")
    return path

  def _dialect(self, path: str):
    """Returns (delimiter, quoting) for csv.reader."""
    return "\t", csv.QUOTE_NONE  # as Google: GLUE texts contain unbalanced quotes

  def _has_header(self, split: str) -> bool:
    return split == "test" or self._spec.header

  def _columns(self, split: str, header: Optional[list], path: str):
    """Returns (text column indices, label column index or None, columns needed)."""
    if split == "test":
      return self._spec.test_cols, None, max(self._spec.test_cols) + 1
    cols, label = self._spec.text_cols, self._spec.label_col
    need = max(cols + (label,)) + 1
    if label < 0:  # last column: the row must be as wide as the header
      need = max(need, len(header) if header else 0, max(cols) + 2)
    return cols, label, need

  def _width(self, need: int) -> Optional[int]:
    """Columns of a header-less GLUE file (all of them are needed)."""
    return need

  def _parse(self, path: str, split: str) -> list:
    """Returns [(Example with raw str label, path, line)] without checking labels."""
    rows = _read_rows(path, *self._dialect(path))
    header = None
    if self._has_header(split) and rows:
      header = rows.pop(0)[1]
    cols, label_col, need = self._columns(split, header, path)
    width = len(header) if header else self._width(need)
    out = []
    for i, (line, row) in enumerate(rows):
      if len(row) < need:
        raise UserInputError(f"{path} line {line}: found {len(row)} column(s), {self.name} {split} "
                             f"needs at least {need}; is this the right file/task?")
      if width and len(row) > width:
        raise UserInputError(f"{path} line {line}: found {len(row)} columns, "
                             f"{'the header has' if header else self.name + ' has'} {width}; "
                             f"a tab or delimiter inside a text? remove it from the text")
      texts = [row[c] for c in cols]
      for c, t in zip(cols, texts):
        if not t.strip():
          raise UserInputError(f"{path} line {line}: empty text in column {c + 1}; "
                               f"fill in or delete the row")
        if len(t) > MAX_TEXT_CHARS:
          raise UserInputError(f"{path} line {line}: the text in column {c + 1} has {len(t):,} "
                               f"characters (limit {MAX_TEXT_CHARS:,}); rows merged by a missing "
                               f"line break or quote? fix the file or shorten the text")
      label = None if label_col is None else row[label_col].strip()
      out.append((Example(f"{split}-{i}", texts[0], texts[1] if len(texts) > 1 else None, label),
                  path, line))
    if not out:
      raise UserInputError(f"{path} has no data rows; check the file")
    return out

  def _check_labels(self, parsed: list, labels: Optional[list]):
    """Validates raw labels in place of `parsed`: floats for regression, else in `labels`."""
    for k, (e, path, line) in enumerate(parsed):
      if labels is None:
        try:
          value = float(e.label)
        except ValueError:
          value = math.nan
        if not math.isfinite(value):
          raise UserInputError(f"{path} line {line}: score {e.label!r} is not a number; "
                               f"{self.name} needs a numeric score (regression) in the label column")
        parsed[k] = (e._replace(label=value), path, line)
      elif e.label not in labels:
        raise UserInputError(f"{path} line {line}: label {e.label!r} is not one of {labels} "
                             f"for {self.name}; fix the row or the task/label list")


class GenericProcessor(Processor):
  """Any CSV/TSV with `{train,dev,test}.{tsv,csv}` in data_dir.

  Args:
    text_a_column, text_b_column, label_column: header name or 0-based index
      (text_b_column None: single-sentence task).
    label_list: the labels; None: the sorted distinct labels of train
      (numerically sorted if all are integers).
    is_regression: float labels, no label list.
    delimiter: None: "\\t" for .tsv (read unquoted, like GLUE), "," for .csv
      (standard double-quote quoting).
    has_header: the first line of every file is a header.
  """

  def __init__(self, text_a_column: Union[str, int] = 0,
               text_b_column: Union[str, int, None] = None,
               label_column: Union[str, int] = 1,
               label_list: Optional[Sequence[str]] = None,
               is_regression: bool = False, delimiter: Optional[str] = None,
               has_header: bool = True):
    self.name = "generic"
    self.metric, self.submission_name = None, "generic"
    self.is_regression = bool(is_regression)
    if is_regression and label_list is not None:
      raise UserInputError("generic task: give label_list or is_regression, not both")
    self._labels = None if label_list is None else [str(l) for l in label_list]
    self._text_cols = (text_a_column,) if text_b_column is None else (text_a_column, text_b_column)
    self._label_col = label_column
    self.is_pair = text_b_column is not None
    self._delimiter = delimiter
    self._has_header_opt = bool(has_header)

  @property
  def labels(self) -> Optional[list]:
    if self._labels is None and not self.is_regression:
      raise UserInputError("generic task labels are inferred from train: call "
                           "get_examples(data_dir, 'train') first or pass label_list")
    return self._labels

  def _dialect(self, path: str):
    is_csv = path.endswith(".csv")
    return (self._delimiter or ("," if is_csv else "\t"),
            csv.QUOTE_MINIMAL if is_csv else csv.QUOTE_NONE)

  def _label_list(self, data_dir):
    if self._labels is None and not self.is_regression:
      train = self._parse(self._path(data_dir, "train"), "train")
      found = {e.label for e, _, _ in train}
      as_int = all(re.fullmatch(r"-?\d+", l) for l in found)
      self._labels = sorted(found, key=int if as_int else None)
    return self._labels

  def _path(self, data_dir: str, split: str) -> str:
    _check_split_and_dir(split, data_dir, f"{split}.tsv or {split}.csv")
    paths = [os.path.join(data_dir, split + ext) for ext in (".tsv", ".csv")]
    found = [p for p in paths if os.path.isfile(p)]
    if len(found) != 1:
      problem = "not found" if not found else "both exist"
      raise UserInputError(f"{paths[0]} / {paths[1]}: {problem}; the generic task needs exactly one "
                           f"{split} file in data_dir")
    return found[0]

  def _has_header(self, split: str) -> bool:
    return self._has_header_opt

  def _width(self, need: int) -> Optional[int]:
    return None  # a header-less generic file may have unused extra columns

  def _columns(self, split: str, header: Optional[list], path: str):
    cols = tuple(self._column_index(c, header, path) for c in self._text_cols)
    label = None if split == "test" else self._column_index(self._label_col, header, path)
    return cols, label, max(cols + ((label,) if label is not None else ())) + 1

  def _column_index(self, column, header, path) -> int:
    """Resolves a header name or 0-based index (int or digit string) to an index."""
    if header is not None and column in header:
      return header.index(column)
    if str(column).isdigit():  # ints >= 0 and digit strings
      return int(column)
    where = f"its header is {header}" if header else "it has no header (has_header=False)"
    raise UserInputError(f"{path}: column {column!r} not found, {where}; "
                         f"pass a header name or a 0-based column index")
