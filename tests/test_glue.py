"""GLUE processors: real files where available, synthetic official layouts otherwise."""

from pathlib import Path

import pytest

from keras_adapters.data import glue
from keras_adapters.errors import UserInputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GLUE_DIR = DATA / "glue_data"
needs_data = pytest.mark.skipif(not GLUE_DIR.is_dir(),
                                reason=f"real GLUE data not found at {GLUE_DIR}")


def _write(folder, name, lines, prefix=b""):
  folder.mkdir(parents=True, exist_ok=True)
  path = folder / name
  path.write_bytes(prefix + "".join(line + "\n" for line in lines).encode("utf-8"))
  return path


def _tsv(*cols):
  return "\t".join(cols)


# --- real data ---------------------------------------------------------------

@needs_data
@pytest.mark.parametrize("task, folder, counts", [
    ("cola", "CoLA", (8551, 1043, 1063)),
    ("sst-2", "SST-2", (67349, 872, 1821)),
    ("mrpc", "MRPC", (3668, 408, 1725)),
    ("sts-b", "STS-B", (5749, 1500, 1379)),
    ("rte", "RTE", (2490, 277, 3000)),
])
def test_real_row_counts(task, folder, counts):
  processor = glue.get_processor(task)
  for split, count in zip(glue.SPLITS, counts):
    examples = processor.get_examples(str(GLUE_DIR / folder), split)
    assert len(examples) == count, (task, split)
    assert all(e.text_a.strip() for e in examples)
    assert all((e.text_b is not None) == processor.is_pair for e in examples)
    if split == "test":
      assert all(e.label is None for e in examples)
    elif processor.is_regression:
      assert all(isinstance(e.label, float) and 0 <= e.label <= 5 for e in examples)
    else:
      assert {e.label for e in examples} == set(processor.labels)


@needs_data
def test_real_mrpc_values_and_bom():
  processor = glue.get_processor("MRPC")
  assert (processor.name, processor.labels, processor.is_pair) == ("mrpc", ["0", "1"], True)
  train = processor.get_examples(str(GLUE_DIR / "MRPC"), "train")
  first = train[0]
  assert first.guid == "train-0" and first.label == "1"
  assert first.text_a == ('Amrozi accused his brother, whom he called "the witness", '
                          'of deliberately distorting his evidence.')
  assert first.text_b == ('Referring to him as only "the witness", Amrozi accused his '
                          'brother of deliberately distorting his evidence.')
  assert train[1].label == "0" and train[1].text_a.startswith("Yucaipa owned Dominick's")
  for split in glue.SPLITS:
    for e in processor.get_examples(str(GLUE_DIR / "MRPC"), split):
      assert "\ufeff" not in e.text_a + e.text_b


@needs_data
def test_real_values_other_tasks():
  cola = glue.get_processor("CoLA").get_examples(str(GLUE_DIR / "CoLA"), "dev")
  assert cola[0] == glue.Example("dev-0", "The sailors rode the breeze clear of the rocks.",
                                 None, "1")
  assert cola[-1].text_a == "John talked to Bill about himself."  # no final newline
  sst_test = glue.get_processor("sst2").get_examples(str(GLUE_DIR / "SST-2"), "test")
  assert sst_test[0] == glue.Example("test-0", "uneasy mishmash of styles and genres .", None, None)
  stsb = glue.get_processor("STS_B")
  assert stsb.is_regression and stsb.labels is None
  dev = stsb.get_examples(str(GLUE_DIR / "STS-B"), "dev")
  assert dev[0] == glue.Example("dev-0", "A man with a hard hat is dancing.",
                                "A man wearing a hard hat is dancing.", 5.0)
  assert dev[1].label == 4.75
  rte = glue.get_processor("rte").get_examples(str(GLUE_DIR / "RTE"), "train")
  assert rte[0] == glue.Example("train-0", "No Weapons of Mass Destruction Found in Iraq Yet.",
                                "Weapons of Mass Destruction Found in Iraq.", "not_entailment")


# --- task names --------------------------------------------------------------

@pytest.mark.parametrize("alias, name", [
    ("CoLA", "cola"), ("SST-2", "sst-2"), ("sst2", "sst-2"), ("STS-B", "sts-b"), ("stsb", "sts-b"),
    ("MNLI", "mnli"), ("mnli_matched", "mnli"), ("MNLI-MM", "mnli-mm"), ("mnli-mm", "mnli-mm"),
    ("mnli_mismatched", "mnli-mm"), ("QQP", "qqp"), ("qnli", "qnli"), ("WNLI", "wnli"),
    ("csv", "generic"), ("Generic", "generic"),
])
def test_aliases(alias, name):
  assert glue.get_processor(alias).name == name


def test_unknown_task_and_options():
  with pytest.raises(UserInputError, match=r"unknown task_name 'foo'; known: cola, sst-2, mrpc"):
    glue.get_processor("foo")
  with pytest.raises(UserInputError, match="only to task_name 'generic'"):
    glue.get_processor("mrpc", label_column=1)
  with pytest.raises(UserInputError, match="unknown generic task option"):
    glue.get_processor("generic", label_col=1)


# --- synthetic official layouts ------------------------------------------------

def test_qqp_layout(tmp_path):
  header = _tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
  _write(tmp_path, "train.tsv", [header, _tsv("0", "1", "2", "How?", "Why?", "0"),
                                 _tsv("1", "3", "4", "What?", "Which?", "1")])
  _write(tmp_path, "dev.tsv", [header, _tsv("7", "8", "9", "Q1?", "Q2?", "1")])
  _write(tmp_path, "test.tsv", [_tsv("id", "question1", "question2"), _tsv("0", "T1?", "T2?")])
  p = glue.get_processor("qqp")
  assert p.get_examples(str(tmp_path), "train") == [
      glue.Example("train-0", "How?", "Why?", "0"), glue.Example("train-1", "What?", "Which?", "1")]
  assert p.get_examples(str(tmp_path), "dev")[0].label == "1"
  assert p.get_examples(str(tmp_path), "test") == [glue.Example("test-0", "T1?", "T2?", None)]


def _mnli_row(s1, s2, *labels):
  return _tsv("0", "p", "q", "fiction", "(bp1)", "(bp2)", "(p1)", "(p2)", s1, s2, *labels)


@pytest.mark.parametrize("task, suffix", [("mnli", "matched"), ("MNLI-MM", "mismatched")])
def test_mnli_layout(tmp_path, task, suffix):
  base = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
          "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
  _write(tmp_path, "train.tsv", [_tsv(*base, "label1", "gold_label"),
                                 _mnli_row("P.", "H.", "neutral", "neutral")])
  _write(tmp_path, f"dev_{suffix}.tsv", [
      _tsv(*base, "label1", "label2", "label3", "label4", "label5", "gold_label"),
      _mnli_row("DP.", "DH.", "neutral", "entailment", "entailment", "neutral", "entailment",
                "entailment")])
  _write(tmp_path, f"test_{suffix}.tsv", [_tsv(*base), _mnli_row("TP.", "TH.")])
  p = glue.get_processor(task)
  assert p.labels == ["contradiction", "entailment", "neutral"]
  assert p.get_examples(str(tmp_path), "train") == [glue.Example("train-0", "P.", "H.", "neutral")]
  assert p.get_examples(str(tmp_path), "dev") == [glue.Example("dev-0", "DP.", "DH.", "entailment")]
  assert p.get_examples(str(tmp_path), "test") == [glue.Example("test-0", "TP.", "TH.", None)]


@pytest.mark.parametrize("task, labels", [("qnli", ["entailment", "not_entailment"]),
                                          ("wnli", ["0", "1"])])
def test_qnli_wnli_layout(tmp_path, task, labels):
  _write(tmp_path, "train.tsv", [_tsv("index", "a", "b", "label"), _tsv("0", "A.", "B.", labels[1])])
  _write(tmp_path, "test.tsv", [_tsv("index", "a", "b"), _tsv("0", "TA.", "TB.")])
  p = glue.get_processor(task)
  assert p.labels == labels
  assert p.get_examples(str(tmp_path), "train") == [glue.Example("train-0", "A.", "B.", labels[1])]
  assert p.get_examples(str(tmp_path), "test") == [glue.Example("test-0", "TA.", "TB.", None)]


def test_quotes_are_not_special_in_glue_tsv(tmp_path):
  _write(tmp_path, "train.tsv", [_tsv("sentence", "label"), _tsv('he said "hi', "1"),
                                 _tsv('"quoted" text', "0")])
  examples = glue.get_processor("sst-2").get_examples(str(tmp_path), "train")
  assert [e.text_a for e in examples] == ['he said "hi', '"quoted" text']


# --- errors ------------------------------------------------------------------

def test_missing_data_dir_and_file(tmp_path):
  with pytest.raises(UserInputError, match="does not exist.*--data_dir"):
    glue.get_processor("rte").get_examples(str(tmp_path / "nope"), "train")
  with pytest.raises(UserInputError, match=r"dev_matched\.tsv not found: the mnli dev split"):
    glue.get_processor("mnli").get_examples(str(tmp_path), "dev")
  with pytest.raises(UserInputError, match="unknown split 'valid'"):
    glue.get_processor("rte").get_examples(str(tmp_path), "valid")


def test_too_few_columns(tmp_path):
  _write(tmp_path, "train.tsv", [_tsv("index", "sentence1", "sentence2", "label"),
                                 _tsv("0", "A.", "B.", "entailment"), _tsv("1", "only one")])
  with pytest.raises(UserInputError, match=r"train\.tsv line 3: found 2 column\(s\), rte train "
                                           r"needs at least 4"):
    glue.get_processor("rte").get_examples(str(tmp_path), "train")


def test_mnli_row_narrower_than_header(tmp_path):
  base = ["c%d" % i for i in range(10)]
  _write(tmp_path, "train.tsv", [_tsv(*base, "label1", "gold_label"),
                                 _mnli_row("P.", "H.", "neutral")])
  with pytest.raises(UserInputError, match="line 2: found 11 column.*needs at least 12"):
    glue.get_processor("mnli").get_examples(str(tmp_path), "train")


def test_bad_label(tmp_path):
  _write(tmp_path, "dev.tsv", ["src\t1\t\tok.", "src\t2\t*\tbad."])
  with pytest.raises(UserInputError, match=r"dev\.tsv line 2: label '2' is not one of \['0', '1'\]"):
    glue.get_processor("cola").get_examples(str(tmp_path), "dev")


def test_non_numeric_stsb_score(tmp_path):
  header = _tsv("index", "genre", "filename", "year", "old_index", "source1", "source2",
                "sentence1", "sentence2", "score")
  _write(tmp_path, "train.tsv", [header, _tsv(*"0abcdef", "A.", "B.", "4.5"),
                                 _tsv(*"1abcdef", "A.", "B.", "high")])
  with pytest.raises(UserInputError, match=r"train\.tsv line 3: score 'high' is not a number"):
    glue.get_processor("stsb").get_examples(str(tmp_path), "train")


def test_empty_text(tmp_path):
  _write(tmp_path, "train.tsv", [_tsv("sentence", "label"), _tsv("fine", "1"), _tsv("  ", "0")])
  with pytest.raises(UserInputError, match=r"train\.tsv line 3: empty text in column 1"):
    glue.get_processor("sst-2").get_examples(str(tmp_path), "train")


def test_non_utf8(tmp_path):
  path = tmp_path / "train.tsv"
  path.write_bytes(b"\xef\xbb\xbfsentence\tlabel\ngood\t1\ncaf\xe9\t0\n")
  with pytest.raises(UserInputError,
                     match=r"train\.tsv line 3 \(byte offset 28\): byte b'\\xe9' is not valid UTF-8"):
    glue.get_processor("sst-2").get_examples(str(tmp_path), "train")


def test_header_only_file(tmp_path):
  _write(tmp_path, "train.tsv", [_tsv("sentence", "label")])
  with pytest.raises(UserInputError, match=r"train\.tsv has no data rows"):
    glue.get_processor("sst-2").get_examples(str(tmp_path), "train")


# --- generic -------------------------------------------------------------------

def test_generic_csv_by_name_infers_labels(tmp_path):
  _write(tmp_path, "train.csv", ["text,extra,label", '"Hi, there",x,pos', "Bad,y,neg",
                                 "Meh,z,neutral"], prefix="\ufeff".encode())
  _write(tmp_path, "dev.csv", ["text,extra,label", "Ok,x,pos"])
  _write(tmp_path, "test.csv", ["text,extra", "Who,x"])
  p = glue.get_processor("csv", text_a_column="text", label_column="label")
  with pytest.raises(UserInputError, match="inferred from train"):
    p.labels  # pylint: disable=pointless-statement
  assert p.get_examples(str(tmp_path), "dev") == [glue.Example("dev-0", "Ok", None, "pos")]
  assert p.labels == ["neg", "neutral", "pos"]
  train = p.get_examples(str(tmp_path), "train")
  assert train[0] == glue.Example("train-0", "Hi, there", None, "pos")  # BOM stripped from header
  assert p.get_examples(str(tmp_path), "test") == [glue.Example("test-0", "Who", None, None)]


def test_generic_tsv_by_index_pair_numeric_labels(tmp_path):
  rows = [_tsv("A.", "B.", "10"), _tsv("C.", "D.", "2"), _tsv("E.", "F.", "2")]
  _write(tmp_path, "train.tsv", rows, prefix="\ufeff".encode())
  p = glue.get_processor("generic", text_a_column=0, text_b_column="1", label_column=2,
                         has_header=False)
  examples = p.get_examples(str(tmp_path), "train")
  assert examples[0] == glue.Example("train-0", "A.", "B.", "10")  # no BOM in the first text
  assert p.is_pair and p.labels == ["2", "10"]


def test_generic_regression_and_given_labels(tmp_path):
  _write(tmp_path, "train.tsv", [_tsv("s", "y"), _tsv("A.", "0.5"), _tsv("B.", "x")])
  p = glue.get_processor("generic", text_a_column="s", label_column="y", is_regression=True)
  with pytest.raises(UserInputError, match="line 3: score 'x' is not a number"):
    p.get_examples(str(tmp_path), "train")
  p = glue.get_processor("generic", text_a_column="s", label_column="y", label_list=["0.5"])
  with pytest.raises(UserInputError, match=r"line 3: label 'x' is not one of \['0.5'\]"):
    p.get_examples(str(tmp_path), "train")


def test_generic_errors(tmp_path):
  _write(tmp_path, "train.tsv", [_tsv("s", "y"), _tsv("A.", "0")])
  p = glue.get_processor("generic", text_a_column="sentence", label_column="y")
  with pytest.raises(UserInputError, match=r"train\.tsv: column 'sentence' not found, its header "
                                           r"is \['s', 'y'\]"):
    p.get_examples(str(tmp_path), "train")
  with pytest.raises(UserInputError, match=r"dev\.tsv / .*dev\.csv: not found"):
    p.get_examples(str(tmp_path), "dev")
  _write(tmp_path, "train.csv", ["s,y", "A.,0"])
  with pytest.raises(UserInputError, match="both exist"):
    p.get_examples(str(tmp_path), "train")
