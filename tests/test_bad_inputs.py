"""The bad-input catalogue: every case of docs/RELIABILITY.md, run for real.

Each case is a command line (run_classifier.py, run_squad.py or the exporter,
the loaders reached through their flags) on a real file made bad in one way.
Each must exit 2 with exactly one stderr line `<program>: error: ...` naming
the problem and the fix, print no traceback, and write nothing outside
checkpoints/ and logs/. The cases run as concurrent subprocesses, 4 at a
time; those a flag or data file decides exit before TF loads, the rest load
TF and MiniLM. The docs table and CASES must
list the same cases with the same messages (`test_docs_table_matches`).
"""

import collections
import concurrent.futures
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import harness
from harness import DATA
from harness import GLUE_DIR
from harness import REPO
from harness import file_hashes
from harness import tiny_adapter_pack

MRPC, STSB = GLUE_DIR / "MRPC", GLUE_DIR / "STS-B"
SQUAD_DEV = DATA / "squad" / "dev-v1.1.json"
MINILM = harness.minilm_cache()
DOC = REPO / "docs" / "RELIABILITY.md"
pytestmark = pytest.mark.large  # 41 driver subprocesses

# Writes of a failed run that are fine: a resumable run's state.
ALLOWED_WRITES = ("out/checkpoints/", "out/logs/")


# --- real inputs, made bad --------------------------------------------------

def _mrpc(tmp, edit=None, rows=6, split="train", encoding="utf-8"):
  """tmp/data: header + `rows` real MRPC rows per split; `edit(lines)`
  rewrites the lines (header first) of `split`."""
  data = tmp / "data"
  data.mkdir(exist_ok=True)
  for name in ("train", "dev", "test"):
    text = (MRPC / f"{name}.tsv").read_text(encoding="utf-8-sig")
    lines = text.splitlines()[:rows + 1]
    if name == split and edit:
      lines = edit(lines)
    (data / f"{name}.tsv").write_bytes(("\n".join(lines) + "\n").encode(
        encoding))
  return str(data)


def _edit_row(line_index, edit_columns):
  def edit(lines):
    lines[line_index] = "\t".join(edit_columns(lines[line_index].split("\t")))
    return lines
  return edit


def _set(index, value):
  return lambda cols: cols[:index] + [value] + cols[index + 1:]


def _stsb(tmp, score):
  data = tmp / "data"
  data.mkdir()
  lines = (STSB / "train.tsv").read_text(encoding="utf-8").splitlines()[:7]
  lines[2] = "\t".join(lines[2].split("\t")[:-1] + [score])
  (data / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(data)


def _minilm_copy(tmp, truncate_data=False, garble_index=False, **config):
  """tmp/ckpt: the converted MiniLM (a Model Garden checkpoint), optionally
  truncated or with a changed encoder.json; returns the prefix."""
  ckpt = tmp / "ckpt"
  ckpt.mkdir()
  for name in os.listdir(MINILM):
    source, target = MINILM / name, ckpt / name
    if name.endswith(".data-00000-of-00001") and truncate_data:
      with open(source, "rb") as f:  # a download cut off after 1 MB
        target.write_bytes(f.read(1 << 20))
    elif name.endswith(".index") and garble_index:
      target.write_bytes(source.read_bytes()[:300] + b"\0" * 300)
    else:
      os.symlink(source, target)
  if config:
    spec = json.loads((MINILM / "encoder.json").read_text())
    spec.update(config)
    (ckpt / "encoder.json").unlink()
    (ckpt / "encoder.json").write_text(json.dumps(spec))
  return str(ckpt / "encoder")


def _vocab_of_another_model(tmp):
  """The first 28,996 entries of the real vocab: the size of BERT-cased's."""
  lines = (MINILM / "vocab.txt").read_text(encoding="utf-8").splitlines()
  path = tmp / "vocab.txt"
  path.write_text("\n".join(lines[:28996]) + "\n", encoding="utf-8")
  return str(path)


def _tiny_pack(tmp, name="pack.npz", adapter_size=8, labels=("0", "1"),
               task_name="mrpc", truncate=False):
  """A real adapter pack of a small random BERT; `truncate` cuts it in half."""
  path = Path(tiny_adapter_pack(tmp / name, adapter_size, labels, task_name))
  if truncate:  # a copy cut off halfway
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  return str(path)


def _resume_dir(tmp):
  """An output_dir whose `checkpoint` file names a checkpoint made of
  garbage (as a disk fault or a bad copy would leave it)."""
  ckpts = tmp / "out" / "checkpoints"
  ckpts.mkdir(parents=True)
  noise = np.random.default_rng(0).bytes(4096)
  (ckpts / "ckpt-4.index").write_bytes(noise)
  (ckpts / "ckpt-4.data-00000-of-00001").write_bytes(noise)
  (ckpts / "checkpoint").write_text(
      'model_checkpoint_path: "ckpt-4"\nall_model_checkpoint_paths: "ckpt-4"\n')
  return []


def _latin1_row(tmp):
  data = _mrpc(tmp)
  path = os.path.join(data, "train.tsv")
  lines = open(path, "rb").read().split(b"\n")
  lines[4] = lines[4].replace(b" ", " caf\u00e9 ".encode("latin-1"), 1)
  open(path, "wb").write(b"\n".join(lines))
  return data


def _without_dev(tmp):
  data = _mrpc(tmp)
  os.remove(os.path.join(data, "dev.tsv"))
  return data


def _a_file(tmp):
  path = tmp / "a_file"
  path.write_text("not a directory")
  return str(path)


def _squad(tmp, mutate=None, name="squad.json"):
  """One real SQuAD dev article (Southern_California), mutated."""
  with open(SQUAD_DEV, encoding="utf-8") as f:
    article = json.load(f)["data"][7]
  if mutate:
    mutate(article["paragraphs"][3]["qas"][1], article["paragraphs"][3])
  path = tmp / name
  path.write_text(json.dumps({"version": "1.1", "data": [article]}),
                  encoding="utf-8")
  return str(path)


def _truncated_squad(tmp):
  path = _squad(tmp)
  text = open(path, encoding="utf-8").read()
  open(path, "w", encoding="utf-8").write(text[:len(text) // 2])
  return path


def _existing_savedmodel(tmp):
  export = tmp / "export"
  export.mkdir()
  (export / "saved_model.pb").write_bytes(b"an earlier export")
  return str(export)


# --- the catalogue ------------------------------------------------------------

Case = collections.namedtuple("Case", "program args contains")
MRPC_TRAIN = ["--task_name=MRPC", "--do_train", "--max_seq_length=32",
              "--train_batch_size=4"]
MRPC_EVAL = ["--task_name=MRPC", "--do_eval", "--max_seq_length=32"]


def _glue(edit=None, **kwargs):
  return lambda tmp: MRPC_TRAIN + [f"--data_dir={_mrpc(tmp, edit, **kwargs)}"]


def _glue_flags(*flags):
  return lambda tmp: _glue()(tmp) + list(flags)


CASES = {
    # run_classifier.py: the data files
    "row_missing_columns": Case(
        "run_classifier.py", _glue(_edit_row(3, lambda c: c[:3])),
        ["train.tsv line 4", "found 3 column(s)", "needs at least 5"]),
    "row_extra_columns": Case(
        "run_classifier.py",
        _glue(_edit_row(3, lambda c: c[:4] + c[4].split(" ", 1))),
        ["train.tsv line 4", "found 6 columns, the header has 5"]),
    "utf16_file": Case(
        "run_classifier.py", _glue(encoding="utf-16"),
        ["train.tsv is UTF-16", "re-save the file as UTF-8"]),
    "bom_inside_file": Case(
        "run_classifier.py", _glue(lambda l: l + ["\ufeff" + l[0]] + l[1:3]),
        ["train.tsv line 8", "byte-order mark (U+FEFF) inside the file"]),
    "empty_text": Case(
        "run_classifier.py", _glue(_edit_row(2, _set(3, " "))),
        ["train.tsv line 3", "empty text in column 4"]),
    "unknown_label": Case(
        "run_classifier.py", _glue(_edit_row(3, _set(0, "2"))),
        ["train.tsv line 4", "label '2' is not one of ['0', '1']"]),
    "non_utf8_bytes": Case(
        "run_classifier.py", lambda tmp: MRPC_TRAIN + [
            f"--data_dir={_latin1_row(tmp)}"],
        ["train.tsv line 5", "is not valid UTF-8"]),
    "over_long_text": Case(
        "run_classifier.py", _glue(_edit_row(5, lambda c: c[:4] + [
            " ".join([c[4]] * 3000)])),
        ["train.tsv line 6", "characters (limit 100,000)"]),
    "header_only_file": Case(
        "run_classifier.py", _glue(lambda lines: lines[:1]),
        ["train.tsv has no data rows"]),
    "score_not_a_number": Case(
        "run_classifier.py", lambda tmp: [
            "--task_name=STS-B", "--do_train",
            f"--data_dir={_stsb(tmp, 'n/a')}"],
        ["train.tsv line 3", "score 'n/a' is not a number"]),
    "dev_file_missing": Case(
        "run_classifier.py", lambda tmp: MRPC_EVAL + [
            f"--data_dir={_without_dev(tmp)}"],
        ["dev.tsv not found", "check --data_dir / --task_name"]),
    # run_classifier.py: flags
    "data_dir_missing": Case(
        "run_classifier.py", lambda tmp: [
            "--task_name=MRPC", "--do_train", "--do_eval",
            f"--data_dir={tmp / 'no_such_dir'}"],
        ["--data_dir ", "no_such_dir is not a directory"]),
    "unknown_task_name": Case(
        "run_classifier.py", lambda tmp: [
            "--task_name=MRPCX", "--do_train", f"--data_dir={MRPC}"],
        ["unknown task_name 'MRPCX'"]),
    "max_seq_length_below_special_tokens": Case(
        "run_classifier.py", lambda tmp: [
            "--task_name=MRPC", "--do_train", "--max_seq_length=2",
            "--train_batch_size=4", f"--data_dir={_mrpc(tmp)}"],
        ["max_seq_length 2 out of range", "[CLS] + 2 x [SEP] take 3"]),
    "max_seq_length_above_positions": Case(
        "run_classifier.py", lambda tmp: [
            "--task_name=MRPC", "--do_train", "--max_seq_length=1024",
            "--train_batch_size=4", f"--data_dir={_mrpc(tmp)}"],
        ["max_seq_length 1024 out of range"]),
    "zero_save_checkpoints_steps": Case(
        "run_classifier.py", _glue_flags("--save_checkpoints_steps=0"),
        ["--save_checkpoints_steps=0 must be >= 1"]),
    "negative_adapter_size": Case(
        "run_classifier.py", _glue_flags("--adapter_size=-8"),
        ["--adapter_size=-8 must be >= 1"]),
    "negative_learning_rate": Case(
        "run_classifier.py", _glue_flags("--learning_rate=-0.001"),
        ["--learning_rate=-0.001 must be positive"]),
    "output_dir_not_writable": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            f"--output_dir={_a_file(tmp)}/out"],
        ["is not writable (Not a directory)"]),
    "fewer_examples_than_a_batch": Case(
        "run_classifier.py", _glue_flags("--train_batch_size=32"),
        ["6 training examples are fewer than one batch"]),
    "dynamic_padding_on_tpu": Case(
        "run_classifier.py", _glue_flags("--dynamic_padding", "--use_tpu",
                                         "--tpu_name=x"),
        ["--dynamic_padding makes batch shapes vary", "drop it for TPU"]),
    "group_by_length_on_tpu": Case(
        "run_classifier.py", _glue_flags("--group_by_length", "--use_tpu",
                                         "--tpu_name=x"),
        ["--group_by_length makes batch shapes vary", "--bucket_by_length"]),
    "group_by_length_with_bucketing": Case(
        "run_classifier.py", _glue_flags("--group_by_length",
                                         "--bucket_by_length"),
        ["--group_by_length already cuts each batch to its longest example",
         "drop --bucket_by_length"]),
    "bucket_boundaries_not_increasing": Case(
        "run_classifier.py", _glue_flags("--bucket_by_length",
                                         "--bucket_boundaries=64,32"),
        ["--bucket_boundaries 64,32: give increasing lengths"]),
    "loss_becomes_nan": Case(
        "run_classifier.py", lambda tmp: [
            "--task_name=MRPC", "--do_train", "--do_eval",
            "--max_seq_length=32", "--train_batch_size=8",
            f"--data_dir={_mrpc(tmp, rows=32)}", "--learning_rate=1e30",
            "--warmup_proportion=0", "--save_checkpoints_steps=1"],
        ["loss became", "the last good checkpoint", "Lower --learning_rate"]),
    # run_classifier.py: adapter packs
    "pack_of_another_backbone": Case(
        "run_classifier.py", lambda tmp: MRPC_EVAL + [
            f"--data_dir={_mrpc(tmp)}",
            f"--adapter_pack={_tiny_pack(tmp, adapter_size=64)}"],
        ["pack.npz was trained on another backbone"]),
    "fusion_without_packs": Case(
        "run_classifier.py", _glue_flags("--fine_tune_mode=fusion"),
        ["--fine_tune_mode=fusion needs --fuse_packs"]),
    "fuse_packs_without_fusion_mode": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            "--fuse_packs=" + _tiny_pack(tmp, "a.npz") + "," + _tiny_pack(
                tmp, "b.npz")],
        ["--fuse_packs trains a fusion: add --do_train --fine_tune_mode="]),
    "fuse_one_pack": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            "--fine_tune_mode=fusion", f"--fuse_packs={_tiny_pack(tmp)}"],
        ["AdapterFusion fuses two or more adapter packs, got 1",
         "add the packs of other tasks"]),
    "fuse_packs_of_another_backbone": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            "--fine_tune_mode=fusion", "--fuse_packs=" + _tiny_pack(
                tmp, "a.npz", 64) + "," + _tiny_pack(tmp, "b.npz", 64)],
        ["a.npz was trained on another backbone; fuse packs trained on"]),
    "leave_out_not_block_numbers": Case(
        "run_classifier.py", _glue_flags("--leave_out=0,top"),
        ["leave_out ['0', 'top']: give block indices >= 0"]),
    "leave_out_beyond_the_blocks": Case(
        "run_classifier.py", _glue_flags("--leave_out=0,9"),
        ["leave_out [0, 9]: the backbone has blocks 0..5"]),
    "trunk_cache_without_leave_out": Case(
        "run_classifier.py", _glue_flags("--trunk_cache"),
        ["--trunk_cache needs --do_train, --fine_tune_mode=adapter and the "
         "lowest blocks left out"]),
    "pack_of_another_task": Case(
        "run_classifier.py", lambda tmp: MRPC_EVAL + [
            f"--data_dir={_mrpc(tmp)}", "--adapter_pack=" + _tiny_pack(
                tmp, labels=("entailment", "not_entailment"),
                task_name="rte")],
        ["was trained with labels ['entailment', 'not_entailment']"]),
    "truncated_pack": Case(
        "run_classifier.py", lambda tmp: MRPC_EVAL + [
            f"--data_dir={_mrpc(tmp)}",
            f"--adapter_pack={_tiny_pack(tmp, truncate=True)}"],
        ["is not a readable adapter pack", "copy it again"]),
    "corrupt_resume_checkpoint": Case(
        "run_classifier.py", lambda tmp: _resume_dir(tmp) + MRPC_EVAL + [
            f"--data_dir={_mrpc(tmp)}"],
        ["cannot restore", "ckpt-4"]),
    # the loaders, through run_classifier.py
    "vocab_of_another_model": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            f"--vocab_file={_vocab_of_another_model(tmp)}"],
        ["has 28996 tokens but the checkpoint's word embeddings have 30522"]),
    "truncated_init_checkpoint": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            f"--init_checkpoint={_minilm_copy(tmp, truncate_data=True)}"],
        ["cannot restore a Model Garden encoder"]),
    "corrupt_checkpoint_index": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            f"--init_checkpoint={_minilm_copy(tmp, garble_index=True)}"],
        ["cannot read checkpoint"]),
    "config_with_negative_size": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            f"--init_checkpoint={_minilm_copy(tmp, hidden_size=-384)}"],
        ["hidden_size=-384 must be a positive integer"]),
    "config_with_fewer_layers": Case(
        "run_classifier.py", lambda tmp: _glue()(tmp) + [
            f"--init_checkpoint={_minilm_copy(tmp, num_layers=5)}"],
        ["has 6 Transformer layers but the config has 5"]),
    # run_squad.py
    "squad_truncated_json": Case(
        "run_squad.py", lambda tmp: [
            "--do_predict", f"--predict_file={_truncated_squad(tmp)}"],
        ["not valid JSON", "truncated?"]),
    "squad_question_missing": Case(
        "run_squad.py", lambda tmp: [
            "--do_predict", "--predict_file=" + _squad(
                tmp, lambda q, p: q.pop("question"))],
        ["'Southern_California'", "missing key 'question'"]),
    "squad_duplicate_id": Case(
        "run_squad.py", lambda tmp: [
            "--do_predict", "--predict_file=" + _squad(
                tmp, lambda q, p: p["qas"].append(dict(q)))],
        ["duplicate question id"]),
    "squad_query_longer_than_window": Case(
        "run_squad.py", lambda tmp: [
            "--do_predict", f"--predict_file={_squad(tmp)}",
            "--max_seq_length=64", "--max_query_length=64"],
        ["must exceed max_query_length 64 + 3"]),
    "squad_pack_of_a_classifier": Case(
        "run_squad.py", lambda tmp: [
            "--do_predict", f"--predict_file={_squad(tmp)}",
            f"--adapter_pack={_tiny_pack(tmp)}"],
        ["was trained for task 'mrpc', not SQuAD"]),
    "squad_group_by_length_on_tpu": Case(
        "run_squad.py", lambda tmp: [
            "--do_train", f"--train_file={_squad(tmp)}", "--group_by_length",
            "--use_tpu", "--tpu_name=x"],
        ["--group_by_length makes batch shapes vary", "--bucket_by_length"]),
    # the exporter (python -m keras_adapters.serving.export)
    "export_over_a_savedmodel": Case(
        "export", lambda tmp: [f"--adapter_pack={_tiny_pack(tmp)}",
                               f"--export_dir={_existing_savedmodel(tmp)}"],
        ["already holds a SavedModel"]),
    "export_packs_of_two_adapter_sizes": Case(
        "export", lambda tmp: [
            "--adapter_pack=" + _tiny_pack(tmp, "a.npz", 8) + "," + _tiny_pack(
                tmp, "b.npz", 16, task_name="sst-2"),
            f"--export_dir={tmp / 'export'}"],
        ["b.npz: adapter_size 16 != 8", "packs must share the adapter size"]),
    "export_two_packs_of_one_task": Case(
        "export", lambda tmp: [
            "--adapter_pack=" + _tiny_pack(tmp, "a.npz") + "," + _tiny_pack(
                tmp, "b.npz"), f"--export_dir={tmp / 'export'}"],
        ["packs need distinct task names"]),
    "export_truncated_pack": Case(
        "export", lambda tmp: [
            f"--adapter_pack={_tiny_pack(tmp, truncate=True)}",
            f"--export_dir={tmp / 'export'}"],
        ["is not a readable adapter pack"]),
}


# --- running them ----------------------------------------------------------

def _run_case(name, tmp):
  case = CASES[name]
  args = case.args(tmp)
  if case.program != "export" and not any(
      a.startswith("--output_dir") for a in args):
    args.append(f"--output_dir={tmp / 'out'}")
  before = file_hashes(tmp)
  result = harness.run_driver(case.program, args, timeout=900)
  after = file_hashes(tmp)
  written = sorted(p for p in after if after[p] != before.get(p) and
                   not p.startswith(ALLOWED_WRITES))
  return result, written


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
  """{name: (CompletedProcess, files written outside ALLOWED_WRITES, tmp)}
  for every case, 4 at a time (the inputs are made here, one by one)."""
  root = tmp_path_factory.mktemp("bad_inputs")
  dirs = {}
  for name in CASES:
    dirs[name] = root / name
    dirs[name].mkdir()
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    futures = {name: pool.submit(_run_case, name, dirs[name])
               for name in CASES}
    return {name: f.result() + (dirs[name],) for name, f in futures.items()}


def _message(outcome):
  """The one stderr line with the case's tmp dir shown as <tmp>."""
  result, _, tmp = outcome
  return result.stderr.strip().replace(str(tmp), "<tmp>").replace(
      str(DATA), "<data>")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(outcomes, name):
  result, written, _ = outcomes[name]
  program = CASES[name].program
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr[-3000:]
  assert lines[0].startswith(f"{program}: error: "), lines[0]
  for words in CASES[name].contains:
    assert words in lines[0]
  assert not written, written  # nothing that could pass for a result


def test_nan_loss_keeps_the_last_good_checkpoint(outcomes):
  """The checkpoint the message names is the one a re-run would resume
  from, and it holds only finite values."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  result, _, tmp = outcomes["loss_becomes_nan"]
  kept = re.search(r"the last good checkpoint (\S+) is kept",
                   result.stderr).group(1)
  assert tf.train.latest_checkpoint(str(tmp / "out" / "checkpoints")) == kept
  reader = tf.train.load_checkpoint(kept)
  floats = [name for name, dtype in reader.get_variable_to_dtype_map().items()
            if dtype.is_floating]
  assert len(floats) > 100
  assert all(np.isfinite(reader.get_tensor(name)).all() for name in floats)


def _docs_table():
  """{case: message pattern} from docs/RELIABILITY.md's catalogue table."""
  rows = {}
  for line in DOC.read_text(encoding="utf-8").splitlines():
    m = re.match(r"\| `tests/test_bad_inputs.py::test_bad_input\[(\w+)\]` "
                 r"\|.*\| `(.*)` \|$", line)
    if m:
      rows[m.group(1)] = m.group(2)
  return rows


def test_docs_table_matches(outcomes):
  """The docs list exactly CASES, each with its real message ("…" stands
  for text that varies, e.g. a TF error detail)."""
  table = _docs_table()
  assert list(table) == list(CASES)
  assert len(table) >= 25
  for name, pattern in table.items():
    regex = ".*".join(re.escape(part) for part in pattern.split("…"))
    message = _message(outcomes[name])
    assert re.fullmatch(regex, message), (name, message)


if __name__ == "__main__":
  # Prints each case's message as the docs table shows it.
  import tempfile
  names = sys.argv[1:] or list(CASES)
  root = Path(tempfile.mkdtemp())
  for case_name in names:
    (root / case_name).mkdir()
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    futures = {n: pool.submit(_run_case, n, root / n) for n in names}
    for n, future in futures.items():
      outcome = future.result() + (root / n,)
      print(f"{n}\trc={outcome[0].returncode}\twritten={outcome[1]}\t"
            f"{_message(outcome)}", flush=True)
