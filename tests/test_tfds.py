"""tensorflow-datasets input: TFDS glue/mrpc prepared offline from the local
MRPC TSVs reads back as exactly the TSV examples, and run_classifier.py
trains and evaluates from it (--tfds_name) with no network."""

import subprocess
import sys

import numpy as np
import pytest

from harness import GLUE_DIR
from harness import REPO
from harness import minilm
from harness import subprocess_env
from keras_adapters.data import glue
from keras_adapters.data import tfds_glue
from keras_adapters.data.features import make_dataset
from keras_adapters.errors import UserInputError

MRPC = GLUE_DIR / "MRPC"
pytestmark = pytest.mark.skipif(not MRPC.is_dir(),
                                reason=f"real MRPC not found at {MRPC}")
# Any download attempt fails at once instead of hanging the test.
OFFLINE = dict(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               NO_PROXY="", no_proxy="")


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tensorflow_datasets")
  tfds_glue.prepare("glue/mrpc", str(MRPC), str(data_dir))
  return data_dir


def test_prepared_like_tfds_glue(tfds_dir):
  import tensorflow_datasets as tfds
  from tensorflow_datasets.text import glue as tfds_glue_builder
  # TFDS's own GLUE builder reads it: same features, label names, version.
  builder = tfds.builder("glue/mrpc", data_dir=str(tfds_dir))
  assert type(builder) is tfds_glue_builder.Glue
  assert builder.is_prepared()
  official = next(c for c in tfds_glue_builder.Glue.BUILDER_CONFIGS
                  if c.name == "mrpc")
  features = builder.info.features
  assert set(features) == {"sentence1", "sentence2", "label", "idx"}
  assert features["label"].names == official.label_classes
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 3668, "validation": 408, "test": 1725}
  first = next(iter(tfds.as_numpy(builder.as_dataset(split="validation"))))
  assert first["label"] == 1 and first["idx"] == 0  # "equivalent"
  assert first["sentence1"].decode().startswith("He said the foodservice")


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_same_examples_as_the_tsv_files(tfds_dir, split):
  from_tfds = tfds_glue.read_examples("glue/mrpc", str(tfds_dir), split)
  from_tsv = glue.get_processor("mrpc").get_examples(str(MRPC), split)
  assert len(from_tfds) == len(from_tsv)
  assert from_tfds == from_tsv  # guid, texts, label, in file order


def test_same_first_training_batch(tfds_dir):
  _, vocab_file, do_lower_case = minilm()
  batches = []
  for examples in (tfds_glue.read_examples("glue/mrpc", str(tfds_dir),
                                           "train"),
                   glue.get_processor("mrpc").get_examples(str(MRPC),
                                                           "train")):
    ds = make_dataset(examples, vocab_file=vocab_file,
                      do_lower_case=do_lower_case, max_seq_length=64,
                      label_list=["0", "1"], is_regression=False,
                      batch_size=32, is_training=True, seed=42,
                      drop_remainder=True, repeat=True)
    batches.append(next(iter(ds.as_numpy_iterator())))
  (features_a, labels_a), (features_b, labels_b) = batches
  np.testing.assert_array_equal(labels_a, labels_b)
  for name in ("input_word_ids", "input_mask", "input_type_ids"):
    np.testing.assert_array_equal(features_a[name], features_b[name])
  assert features_a["input_word_ids"].shape == (32, 64)


def test_unprepared_or_unknown_dataset_is_a_clear_error(tmp_path):
  with pytest.raises(UserInputError, match="not prepared in --tfds_data_dir"
                     ".*python -m keras_adapters.data.tfds_glue"):
    tfds_glue.read_examples("glue/rte", str(tmp_path), "train")
  with pytest.raises(UserInputError, match="glue/qnlix.*not supported"):
    tfds_glue.config_of("glue/qnlix")


@pytest.mark.large  # a driver subprocess
def test_driver_trains_mrpc_from_tfds_offline(tfds_dir, tmp_path):
  # 3668 * 0.01 // 32 = 1 step; then the whole dev split through TFDS.
  env = dict(subprocess_env(), TF_CPP_MIN_LOG_LEVEL="3", **OFFLINE)
  result = subprocess.run(
      [sys.executable, str(REPO / "run_classifier.py"),
       "--tfds_name=glue/mrpc", f"--tfds_data_dir={tfds_dir}", "--do_train",
       "--do_eval", "--max_seq_length=32", "--num_train_epochs=0.01",
       f"--output_dir={tmp_path / 'out'}"], cwd=REPO, env=env,
      capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Eval results (408 dev examples)" in result.stdout
  results = (tmp_path / "out" / "eval_results.txt").read_text()
  assert "global_step = 1\n" in results and "eval_f1" in results
  assert (tmp_path / "out" / "adapter_pack.npz").is_file()
