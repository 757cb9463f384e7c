"""Adapter packs: save the trained variables, load them onto a fresh model."""

import json

import numpy as np
import pytest
import tf_keras

import harness
from harness import tiny_encoder
from keras_adapters.config import AdapterConfig
from keras_adapters.saving import adapter_pack
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.errors import UserInputError

CONFIG = dict(task_name="mrpc", labels=["0", "1"], fine_tune_mode="adapter",
              adapter_size=4)


def _backbone(perturb=False):
  encoder = tiny_encoder(vocab_size=60, hidden_size=16, inner_dim=32,
                         max_sequence_length=16, inner_activation="gelu",
                         type_vocab_size=2, seed=0)
  if perturb:  # the same architecture and seed, one weight nudged
    table = encoder.get_embedding_table()
    table[7, 3].assign(table[7, 3] + 1e-3)
  return encoder


def _data(n=32, length=12, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(4, 60, size=(n, length)).astype(np.int32)
  ids[:, 0] = 2
  ids[n // 2:, length - 3:] = 0  # padding for half of them
  x = dict(input_word_ids=ids, input_mask=(ids > 0).astype(np.int32),
           input_type_ids=np.zeros_like(ids))
  y = (ids[:, 1] % 2).astype(np.int32)
  return x, y


def _predict(model, x):
  return model(x, training=False).numpy()


def _pack_key(variable, encoder):
  """The name a pack stores: the encoder's own name replaced by "encoder"."""
  prefix = encoder.name + "/"
  if variable.name.startswith(prefix):
    return "encoder/" + variable.name[len(prefix):]
  return variable.name


@pytest.fixture(scope="module")
def backbone():
  return _backbone()


@pytest.fixture(scope="module")
def trained(backbone, tmp_path_factory):
  """A few real training steps in adapter mode, then save_adapter_pack."""
  tf_keras.utils.set_random_seed(1)
  model, encoder = build_classifier(backbone, 2, "adapter", adapter_size=4,
                                    adapter_init_scale=1e-2)
  before = [v.numpy() for v in model.trainable_variables]
  model.compile(optimizer=tf_keras.optimizers.Adam(1e-2),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  x, y = _data()
  model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # 8 steps
  assert model.optimizer.iterations.numpy() == 8
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(before, model.trainable_variables)]
  assert all(changed)  # every trained variable moved (adapters included)
  path = str(tmp_path_factory.mktemp("pack") / "adapter_pack.npz")
  adapter_pack.save_adapter_pack(path, model, encoder, CONFIG)
  return path, model, encoder, _predict(model, x)


def test_load_onto_fresh_model_gives_identical_predictions(backbone, trained):
  path, _, _, expected = trained
  tf_keras.utils.set_random_seed(2)
  model, encoder = build_classifier(backbone, 2, "adapter", adapter_size=4)
  x, _ = _data()
  assert np.abs(_predict(model, x) - expected).max() > 1e-3  # untrained
  config = adapter_pack.load_adapter_pack(path, model, encoder)
  np.testing.assert_array_equal(_predict(model, x), expected)
  assert {k: config[k] for k in CONFIG} == CONFIG


def test_pack_holds_only_the_trained_variables_and_config(trained):
  path, model, encoder, _ = trained
  with np.load(path) as data:
    arrays = {k: data[k] for k in data.files}
  config = json.loads(str(arrays.pop("__config__")))
  keys = {_pack_key(v, encoder): v for v in model.trainable_variables}
  names = set(keys)
  assert set(arrays) == names
  # adapters, LayerNorms, pooler, head: no frozen backbone weight
  assert len(names) == 2 * 2 * 4 + (1 + 2 * 2) * 2 + 2 + 2
  assert not [n for n in names if "embeddings:0" in n or "/query/" in n
              or "intermediate" in n or "/output/kernel" in n]
  for key, variable in keys.items():
    np.testing.assert_array_equal(arrays[key], variable.numpy())
  assert sum(a.size for a in arrays.values()) == sum(
      v.shape.num_elements() for v in model.trainable_variables)
  assert {k: config[k] for k in CONFIG} == CONFIG
  assert config["fingerprint"] == adapter_pack.backbone_fingerprint(
      model, encoder)
  assert len(config["fingerprint"]) == 64


def test_load_onto_another_backbone_fails_and_changes_nothing(trained):
  path = trained[0]
  model, encoder = build_classifier(_backbone(perturb=True), 2, "adapter",
                                    adapter_size=4)
  x, _ = _data()
  before = _predict(model, x)
  with pytest.raises(UserInputError, match="another backbone"):
    adapter_pack.load_adapter_pack(path, model, encoder)
  np.testing.assert_array_equal(_predict(model, x), before)


def test_pack_with_another_adapter_size_fails(backbone, trained):
  model, encoder = build_classifier(backbone, 2, "adapter", adapter_size=8)
  with pytest.raises(UserInputError,
                     match="adapter_size=4 but the model has 8"):
    adapter_pack.load_adapter_pack(trained[0], model, encoder)


def test_pack_of_another_mode_or_label_count_fails(backbone, trained):
  model, encoder = build_classifier(backbone, 3, "adapter", adapter_size=4)
  with pytest.raises(UserInputError, match=r"has shape \(16, 2\).*\(16, 3\)"):
    adapter_pack.load_adapter_pack(trained[0], model, encoder)
  model, encoder = build_classifier(backbone, 2, "layer_norm")
  with pytest.raises(UserInputError, match="does not match the model's "
                     "trained variables"):
    adapter_pack.load_adapter_pack(trained[0], model, encoder)


@pytest.mark.parametrize("corruption", ["truncated", "garbage", "no_config"])
def test_corrupt_pack_is_a_user_input_error(trained, tmp_path, corruption):
  path, model, encoder, _ = trained
  data = open(path, "rb").read()
  bad = tmp_path / "bad.npz"
  if corruption == "truncated":
    bad.write_bytes(data[:len(data) // 2])
  elif corruption == "garbage":
    bad.write_bytes(b"\x00not a zip\xff" * 100)
  else:
    np.savez(bad, some=np.zeros(3))
  with pytest.raises(UserInputError, match="not a readable adapter pack"):
    adapter_pack.load_adapter_pack(str(bad), model, encoder)


def test_missing_pack_is_a_user_input_error(trained, tmp_path):
  _, model, encoder, _ = trained
  with pytest.raises(UserInputError, match="not found"):
    adapter_pack.load_adapter_pack(str(tmp_path / "nope.npz"), model, encoder)


def test_pfeiffer_pack_round_trip_and_a_houlsby_pack_fails(backbone, trained,
                                                          tmp_path):
  tf_keras.utils.set_random_seed(3)
  model, encoder = build_classifier(backbone, 2, "adapter", adapter_size=4,
                                    adapter_init_scale=0.3,
                                    adapter_type="pfeiffer")
  path = str(tmp_path / "pfeiffer.npz")
  adapter_pack.save_adapter_pack(path, model, encoder,
                                 dict(CONFIG, adapter_type="pfeiffer"))
  x, _ = _data()
  fresh, fresh_encoder = build_classifier(backbone, 2, "adapter",
                                          adapter_size=4,
                                          adapter_type="pfeiffer")
  assert np.abs(_predict(fresh, x) - _predict(model, x)).max() > 1e-4
  adapter_pack.load_adapter_pack(path, fresh, fresh_encoder)
  np.testing.assert_array_equal(_predict(fresh, x), _predict(model, x))
  with np.load(path) as data:  # one adapter (4 variables) per block
    assert sum("adapter_ffn" in k for k in data.files) == 2 * 4
    assert not [k for k in data.files if "adapter_attention" in k]
  houlsby = str(tmp_path / "houlsby.npz")
  adapter_pack.save_adapter_pack(houlsby, trained[1], trained[2],
                                 dict(CONFIG, adapter_type="houlsby"))
  with pytest.raises(UserInputError, match="adapter_type=houlsby but the "
                     "model has pfeiffer"):
    adapter_pack.load_adapter_pack(houlsby, fresh, fresh_encoder)


def test_a_pack_written_before_leave_out_loads_and_predicts_as_then():
  """tests/data/pack_1e49bb6: a pack of a tiny seeded BERT written by the
  code of commit 1e49bb6 (before leave_out), with the logits that code gave
  (make_pack.py there, run in a checkout of 1e49bb6)."""
  folder = harness.REPO / "tests" / "data" / "pack_1e49bb6"
  path = str(folder / "adapter_pack.npz")
  expected = json.loads((folder / "expected.json").read_text())
  config, _ = adapter_pack.read_pack(path)
  assert "leave_out" not in config and expected["commit"] == "1e49bb6"
  backbone = harness.tiny_encoder(max_sequence_length=16,
                                  inner_activation="gelu", seed=5)
  model, encoder = build_classifier(
      backbone, len(config["labels"]),
      adapter_config=AdapterConfig.from_dict(config))
  adapter_pack.load_adapter_pack(path, model, encoder)
  inputs = {k: np.array(v, np.int32) for k, v in expected["inputs"].items()}
  np.testing.assert_allclose(model(inputs, training=False).numpy(),
                             expected["logits"], atol=1e-6)
