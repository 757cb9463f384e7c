"""Every pretrained-weight loader vs an independent NumPy BERT, real MiniLM.

all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, exact erf GELU) is written
in each source format, loaded back and run on real WordPiece ids (a padded
batch with a sentence pair) and compared to tests/reference_bert.py.
Measured max |diff| over both outputs (float32 TF vs float64 NumPy): 8.4e-6
for every exact-GELU load (safetensors, TF1 with gelu_is_tanh=False, Model
Garden, Hub, preset), 1.6e-6 for the tanh-GELU loads; ATOL = 1e-4. Swapping
GELU's tanh approximation for the exact one moves the outputs by ~2e-3, so
`_check` also asserts the loaded activation is the intended one.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.legacy.bert import configs
from official.nlp.tools import export_tfhub_lib
from official.nlp.tools import tokenization
from safetensors.numpy import load_file

from keras_adapters.errors import UserInputError
from keras_adapters.loaders.pretrained import load_pretrained
from keras_adapters.loaders.hub import load_hub_encoder
from keras_adapters.loaders.model_garden import load_model_garden_checkpoint
from keras_adapters.loaders.safetensors_bert import google_names_from_hf
from keras_adapters.loaders.safetensors_bert import load_safetensors_bert
from keras_adapters.loaders.tf1_checkpoint import load_tf1_checkpoint
from keras_adapters.loaders.tf1_checkpoint import write_tf1_checkpoint
from keras_adapters.loaders.presets import preset_source_dir
from reference_bert import bert_forward

ATOL = 1e-4
MEASURED = {}  # loader -> max abs diff, printed at the end (pytest -s).


@pytest.fixture(scope="module", autouse=True)
def report_measured():
  """Prints every loader's measured max |diff| after the module's tests
  (each test asserts its own against ATOL)."""
  yield
  print("\nmax abs diff vs NumPy reference:",
        json.dumps({k: float(f"{v:.2e}") for k, v in MEASURED.items()}))


@pytest.fixture(scope="module")
def minilm_dir():
  try:
    return preset_source_dir("all-MiniLM-L6-v2")
  except UserInputError as e:
    pytest.skip(str(e))


@pytest.fixture(scope="module")
def hf_config(minilm_dir):
  with open(os.path.join(minilm_dir, "config.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def tensors(minilm_dir):
  return load_file(os.path.join(minilm_dir, "model.safetensors"))


@pytest.fixture(scope="module")
def batch(minilm_dir):
  """Real ids: a single sentence and a (shorter) pair, padded to one length."""
  tokenizer = tokenization.FullTokenizer(
      os.path.join(minilm_dir, "vocab.txt"), do_lower_case=True)
  examples = [
      ("Adapters add only a few trainable parameters per task.",
       "The pretrained BERT weights stay frozen."),
      ("The quick brown fox jumps over the lazy dog.", None),
  ]
  rows = []
  for a, b in examples:
    tokens = ["[CLS]"] + tokenizer.tokenize(a) + ["[SEP]"]
    types = [0] * len(tokens)
    if b:
      second = tokenizer.tokenize(b) + ["[SEP]"]
      tokens += second
      types += [1] * len(second)
    rows.append((tokenizer.convert_tokens_to_ids(tokens), types))
  length = max(len(ids) for ids, _ in rows)
  ids = np.zeros([len(rows), length], np.int32)
  mask, types = np.zeros_like(ids), np.zeros_like(ids)
  for i, (row_ids, row_types) in enumerate(rows):
    ids[i, :len(row_ids)], mask[i, :len(row_ids)] = row_ids, 1
    types[i, :len(row_types)] = row_types
  assert 100 not in ids  # no [UNK]: the vocab covers the sentences.
  assert mask[1].sum() < length and types[0].sum() > 0
  return dict(input_word_ids=ids, input_mask=mask, input_type_ids=types)


@pytest.fixture(scope="module")
def reference(tensors, batch, hf_config):
  """gelu_approximate -> (sequence_output, pooled_output) in float64."""
  def run(approximate):
    return bert_forward(tensors, batch["input_word_ids"], batch["input_mask"],
                        batch["input_type_ids"],
                        hf_config["num_attention_heads"], approximate)
  return {False: run(False), True: run(True)}


def _max_diff(encoder, batch, expected):
  out = encoder({k: tf.constant(v) for k, v in batch.items()}, training=False)
  return max(float(np.abs(out[k].numpy() - e).max()) for k, e in
             zip(("sequence_output", "pooled_output"), expected))


def _check(name, encoder, batch, reference, approximate=False):
  diff = _max_diff(encoder, batch, reference[approximate])
  MEASURED[name] = diff
  assert diff < ATOL, f"{name}: max abs diff {diff}"
  # The other GELU is far outside the tolerance: the activation is checked.
  assert _max_diff(encoder, batch, reference[not approximate]) > 10 * ATOL


@pytest.fixture(scope="module")
def st_encoder(minilm_dir):
  return load_safetensors_bert(minilm_dir)


@pytest.fixture(scope="module")
def tf1_dir(tmp_path_factory, tensors, hf_config, minilm_dir):
  """Google's release layout, named like Google's zips."""
  path = tmp_path_factory.mktemp("tf1") / "uncased_L-6_H-384_A-12"
  weights = google_names_from_hf(tensors)
  write_tf1_checkpoint(weights, str(path / "bert_model.ckpt"))
  keys = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob",
          "hidden_size", "initializer_range", "intermediate_size",
          "max_position_embeddings", "num_attention_heads",
          "num_hidden_layers", "type_vocab_size", "vocab_size")
  # "gelu" here means what Google's modeling.py computes: the tanh form.
  (path / "bert_config.json").write_text(
      json.dumps({k: hf_config[k] for k in keys}))
  shutil.copy(os.path.join(minilm_dir, "vocab.txt"), path)
  return path


@pytest.fixture(scope="module")
def mg_dir(tmp_path_factory, st_encoder, minilm_dir):
  """As presets.py caches it: encoder.json, a tf.train.Checkpoint, vocab."""
  path = tmp_path_factory.mktemp("mg")
  tf.train.Checkpoint(encoder=st_encoder).write(str(path / "encoder"))
  # indent: the pure-Python encoder accepts Keras' tracked DictWrappers.
  (path / "encoder.json").write_text(
      json.dumps(st_encoder.get_config(), indent=1))
  shutil.copy(os.path.join(minilm_dir, "vocab.txt"), path)
  return path


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory, st_encoder, hf_config, minilm_dir):
  """MiniLM exported by Model Garden's own export_tfhub_lib (as on tfhub.dev).

  Its legacy `BertEncoder` is built from a BertConfig whose hidden_act is the
  exact GELU function (Model Garden would read the string "gelu" as tanh).
  """
  path = tmp_path_factory.mktemp("hub")
  c = hf_config
  bert_config = configs.BertConfig(
      vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
      num_hidden_layers=c["num_hidden_layers"],
      num_attention_heads=c["num_attention_heads"],
      intermediate_size=c["intermediate_size"],
      type_vocab_size=c["type_vocab_size"],
      max_position_embeddings=c["max_position_embeddings"],
      hidden_act=tf_keras.activations.gelu)  # approximate=False
  legacy = export_tfhub_lib.get_bert_encoder(bert_config)
  for target, source in zip(legacy.variables, st_encoder.variables):
    assert source.name.endswith("/" + target.name), (source.name, target.name)
    target.assign(source)
  checkpoint = tf.train.Checkpoint(encoder=legacy).save(str(path / "ckpt"))
  export_tfhub_lib.export_model(
      str(path / "bert_hub"), bert_config=bert_config,
      model_checkpoint_path=checkpoint, with_mlm=False,
      vocab_file=os.path.join(minilm_dir, "vocab.txt"), do_lower_case=True)
  return path / "bert_hub"


def test_safetensors_matches_reference(st_encoder, batch, reference):
  _check("safetensors", st_encoder, batch, reference)


def test_tf1_checkpoint_is_name_based(tf1_dir, tensors):
  names = dict(tf.train.list_variables(str(tf1_dir / "bert_model.ckpt")))
  assert set(names) == set(google_names_from_hf(tensors))
  assert names["bert/encoder/layer_0/attention/self/query/kernel"] == [384, 384]


def test_tf1_matches_reference(tf1_dir, batch, reference):
  encoder = load_tf1_checkpoint(str(tf1_dir / "bert_config.json"),
                                str(tf1_dir / "bert_model.ckpt"))
  _check("tf1 (gelu=tanh)", encoder, batch, reference, approximate=True)


def test_tf1_exact_gelu_and_load_pretrained(tf1_dir, batch, reference):
  pretrained = load_pretrained(init_checkpoint=str(tf1_dir))
  assert "TF1" in pretrained.description
  assert pretrained.vocab_file == str(tf1_dir / "vocab.txt")
  assert pretrained.do_lower_case  # "uncased" in the path.
  assert _max_diff(pretrained.encoder, batch, reference[True]) < ATOL
  encoder = load_tf1_checkpoint(str(tf1_dir / "bert_config.json"),
                                str(tf1_dir), gelu_is_tanh=False)
  _check("tf1 (gelu=erf)", encoder, batch, reference)


def test_model_garden_matches_reference(mg_dir, batch, reference):
  pretrained = load_pretrained(init_checkpoint=str(mg_dir / "encoder"),
                               do_lower_case=False)
  assert "Model Garden" in pretrained.description
  assert pretrained.vocab_file == str(mg_dir / "vocab.txt")
  assert not pretrained.do_lower_case
  _check("model garden", pretrained.encoder, batch, reference)


@pytest.mark.large
def test_hub_matches_reference(hub_dir, batch, reference):
  pretrained = load_pretrained(hub_module=str(hub_dir))
  assert pretrained.vocab_file == str(hub_dir / "assets" / "vocab.txt")
  assert pretrained.do_lower_case
  assert "activation gelu read from the graph" in pretrained.description
  assert pretrained.encoder.get_config()["num_layers"] == 6
  _check("hub", pretrained.encoder, batch, reference)


@pytest.mark.large
def test_hub_activation_override(hub_dir, batch, reference):
  encoder, vocab, lower = load_hub_encoder(str(hub_dir),
                                           hidden_act="gelu_new")
  assert vocab.endswith("vocab.txt") and lower
  _check("hub (override gelu_new)", encoder, batch, reference,
         approximate=True)


def test_default_preset(batch, reference, tmp_path, monkeypatch):
  monkeypatch.setenv("KERAS_ADAPTERS_CACHE", str(tmp_path))
  pretrained = load_pretrained()
  assert pretrained.description == "preset all-MiniLM-L6-v2"
  assert pretrained.do_lower_case and os.path.isfile(pretrained.vocab_file)
  _check("preset", pretrained.encoder, batch, reference)


# ---------------------------------------------------------------- bad input


def _config_variant(tmp_path, source, **changes):
  config = json.loads(open(source).read())
  config.update(changes)
  path = tmp_path / f"config_{'_'.join(changes)}.json"
  path.write_text(json.dumps(config))
  return str(path)


def _raises(match, fn, *args, **kwargs):
  with pytest.raises(UserInputError, match=match) as info:
    fn(*args, **kwargs)
  assert "\n" not in str(info.value)


def test_tf1_errors(tf1_dir, mg_dir, tmp_path):
  config = str(tf1_dir / "bert_config.json")
  ckpt = str(tf1_dir / "bert_model.ckpt")
  _raises("BERT config .*nope.json not found", load_tf1_checkpoint,
          str(tmp_path / "nope.json"), ckpt)
  _raises(r"checkpoint .*missing.ckpt not found", load_tf1_checkpoint,
          config, str(tmp_path / "missing.ckpt"))
  _raises("this looks like a Model Garden TF2 checkpoint", load_tf1_checkpoint,
          config, str(mg_dir / "encoder"))
  _raises("more than num_hidden_layers=5 layers.*does not match",
          load_tf1_checkpoint,
          _config_variant(tmp_path, config, num_hidden_layers=5), ckpt)
  _raises("lacks 16 BERT weights.*layer_6", load_tf1_checkpoint,
          _config_variant(tmp_path, config, num_hidden_layers=7), ckpt)
  _raises(r"word_embeddings has shape \[30522, 384\] but the config needs "
          r"\[30522, 768\].*does not match", load_tf1_checkpoint,
          _config_variant(tmp_path, config, hidden_size=768), ckpt)


def test_safetensors_errors(minilm_dir, tmp_path):
  _raises("config.json not found.*needs config.json and model.safetensors",
          load_safetensors_bert, str(tmp_path))
  bad = tmp_path / "bad"
  bad.mkdir()
  os.symlink(os.path.join(minilm_dir, "model.safetensors"),
             bad / "model.safetensors")
  source = os.path.join(minilm_dir, "config.json")
  shutil.copy(_config_variant(tmp_path, source, intermediate_size=1024),
              bad / "config.json")
  _raises(r"intermediate/dense/kernel has shape \[384, 1536\] but the config "
          r"needs \[384, 1024\]", load_safetensors_bert, str(bad))
  shutil.copy(_config_variant(tmp_path, source, num_hidden_layers=5),
              bad / "config.json")
  _raises("has 16 BERT weights the config lacks.*layer_5", load_safetensors_bert,
          str(bad))


def test_model_garden_errors(mg_dir, tmp_path):
  config = str(mg_dir / "encoder.json")
  _raises("encoder config .*nope.json not found", load_model_garden_checkpoint,
          str(mg_dir / "encoder"), str(tmp_path / "nope.json"))
  _raises("cannot restore .*missing", load_model_garden_checkpoint,
          str(tmp_path / "missing"), config)
  for layers in (5, 7):  # restore() alone would accept 5 of 6 layers
    _raises(f"has 6 Transformer layers but the config has {layers}",
            load_model_garden_checkpoint, str(mg_dir / "encoder"),
            _config_variant(tmp_path, config, num_layers=layers))
  _raises("cannot restore .*belong together", load_model_garden_checkpoint,
          str(mg_dir / "encoder"),
          _config_variant(tmp_path, config, inner_dim=1024))


def test_hub_errors(tmp_path):
  _raises("no saved_model.pb", load_hub_encoder, str(tmp_path / "nope"))
  module = tf.Module()
  module.w = tf.Variable([1.0])
  tf.saved_model.save(module, str(tmp_path / "not_bert"))
  _raises("is not a BERT encoder SavedModel", load_hub_encoder,
          str(tmp_path / "not_bert"))


@pytest.mark.large
def test_load_pretrained_errors(tf1_dir, mg_dir, hub_dir, tmp_path):
  _raises("pass hub_module or init_checkpoint, not both", load_pretrained,
          init_checkpoint=str(tf1_dir), hub_module=str(hub_dir))
  _raises("bert_config_file needs init_checkpoint", load_pretrained,
          bert_config_file=str(tf1_dir / "bert_config.json"))
  _raises("unknown preset 'nope'", load_pretrained, preset="nope")
  no_config = _link(tf1_dir, tmp_path / "no_config", "bert_model.ckpt")
  _raises("no bert_config.json beside", load_pretrained,
          init_checkpoint=str(no_config))
  no_vocab = _link(mg_dir, tmp_path / "no_vocab", "encoder")
  _raises("vocab file .*vocab.txt not found; pass vocab_file",
          load_pretrained, init_checkpoint=str(no_vocab))


def _link(source_dir, target, prefix):
  """`target` with symlinks to the files of `source_dir` starting `prefix`."""
  target.mkdir()
  for name in os.listdir(source_dir):
    if name.startswith(prefix):
      os.symlink(source_dir / name, target / name)
  return target
