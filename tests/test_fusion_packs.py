"""AdapterFusion of adapter packs on a tiny random BERT: which variables
train, that the fused adapters are the packs' and stay so, the fusion pack
round trip, and the one-line errors. (Plumbing only: whether fusion helps is
measured on real GLUE in benchmarks/paper, not here.)"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tf_keras

from harness import tiny_encoder
from keras_adapters.saving import adapter_pack
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.errors import UserInputError
from keras_adapters.layers.adapter_fusion import AdapterFusion

SIZES = [4, 6]


def _backbone():
  return tiny_encoder(vocab_size=60, hidden_size=16, inner_dim=32,
                      max_sequence_length=16, inner_activation="gelu",
                      type_vocab_size=2, seed=0)


def _data(n=32, length=12, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(4, 60, size=(n, length)).astype(np.int32)
  x = dict(input_word_ids=ids, input_mask=np.ones_like(ids),
           input_type_ids=np.zeros_like(ids))
  return x, rng.integers(0, 2, size=n)


def _fit(model, seed, learning_rate=1e-2):
  model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  x, y = _data(seed=seed)
  model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)


def _pack(tmp_path, backbone, size, seed, mode="adapter",
          adapter_type="pfeiffer"):
  tf_keras.utils.set_random_seed(seed)
  model, encoder = build_classifier(backbone, 2, mode, adapter_size=size,
                                    adapter_type=adapter_type)
  _fit(model, seed)
  path = str(tmp_path / f"{mode}_{adapter_type}_{size}_{seed}.npz")
  adapter_pack.save_adapter_pack(path, model, encoder, dict(
      fine_tune_mode=mode, adapter_type=adapter_type, adapter_size=size))
  return path


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("fusion")
  backbone = _backbone()
  return backbone, [_pack(tmp_path, backbone, m, seed=10 + i)
                    for i, m in enumerate(SIZES)]


def _fusion(backbone, paths):
  settings = adapter_pack.fusion_settings(paths)
  assert settings == dict(fine_tune_mode="fusion", adapter_type="pfeiffer",
                          fused_adapter_sizes=SIZES, leave_out=[])
  tf_keras.utils.set_random_seed(3)
  model, encoder = build_classifier(
      backbone, 2, "fusion", adapter_type=settings["adapter_type"],
      fused_adapter_sizes=settings["fused_adapter_sizes"])
  adapter_pack.load_fused_adapters(paths, model, encoder)
  return model, encoder


def _pack_arrays(path):
  return adapter_pack.read_pack(path)[1]


def _key(variable):
  return "encoder/" + variable.name.split("/", 1)[1]


def test_the_fused_adapters_are_the_packs_and_only_the_fusion_trains(packs):
  backbone, paths = packs
  model, encoder = _fusion(backbone, paths)
  fusions = encoder.adapters
  assert len(fusions) == 2 and all(isinstance(f, AdapterFusion)
                                   for f in fusions)
  for i, path in enumerate(paths):
    arrays = _pack_arrays(path)
    for fusion in fusions:
      for variable in fusion.adapters[i].weights:
        source = _key(variable).replace(f"/adapter_{i}/", "/")
        np.testing.assert_array_equal(variable.numpy(), arrays[source])
  trained = {v.name.split("/", 1)[1] for v in model.trainable_variables
             if v.name.startswith(encoder.name + "/")}
  per_block = {f"query/kernel:0", "query/bias:0", "key/kernel:0",
               "key/bias:0", "value/kernel:0"}
  fusion_names = {n for n in trained if "/adapter_ffn/" in n}
  assert {n.rsplit("/adapter_ffn/", 1)[1] for n in fusion_names} == per_block
  assert len(fusion_names) == 2 * len(per_block)
  rest = trained - fusion_names
  assert rest and all("layer_norm" in n or "pooler" in n for n in rest), rest
  before = {v.name: v.numpy() for v in encoder.weights}
  _fit(model, seed=20, learning_rate=1e-2)
  changed = {v.name for v in encoder.weights
             if not np.array_equal(v.numpy(), before[v.name])}
  assert changed == {v.name for v in encoder.trainable_weights}
  assert any("/query/" in n and "adapter_ffn" in n for n in changed)


def test_fusion_pack_round_trip_holds_the_fused_adapters(packs, tmp_path):
  backbone, paths = packs
  model, encoder = _fusion(backbone, paths)
  _fit(model, seed=21)
  path = str(tmp_path / "fusion.npz")
  adapter_pack.save_adapter_pack(path, model, encoder, dict(
      fine_tune_mode="fusion", adapter_type="pfeiffer",
      fused_adapter_sizes=SIZES))
  keys = set(_pack_arrays(path))
  assert {_key(v) for f in encoder.adapters for a in f.adapters
          for v in a.weights} < keys
  x, _ = _data(seed=5)
  expected = model.predict(x, verbose=0)
  tf_keras.utils.set_random_seed(4)
  fresh, fresh_encoder = build_classifier(
      backbone, 2, "fusion", adapter_type="pfeiffer",
      fused_adapter_sizes=SIZES)
  assert np.abs(fresh.predict(x, verbose=0) - expected).max() > 1e-4
  adapter_pack.load_adapter_pack(path, fresh, fresh_encoder)
  np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)
  # Its fingerprint is the backbone's, as the fused packs' are.
  assert (adapter_pack.read_pack(path)[0]["fingerprint"] ==
          adapter_pack.read_pack(paths[0])[0]["fingerprint"])


def test_fusion_settings_errors(packs, tmp_path):
  backbone, paths = packs
  with pytest.raises(UserInputError, match="two or more"):
    adapter_pack.fusion_settings(paths[:1])
  # (full fine-tuning trains the encoder it is given: not the shared one)
  full = _pack(tmp_path, _backbone(), 4, seed=1, mode="full")
  with pytest.raises(UserInputError, match="fine_tune_mode=full pack"):
    adapter_pack.fusion_settings([paths[0], full])
  houlsby = _pack(tmp_path, backbone, 4, seed=2, adapter_type="houlsby")
  with pytest.raises(UserInputError, match="mix adapter types"):
    adapter_pack.fusion_settings([paths[0], houlsby])
  with pytest.raises(UserInputError, match="not found"):
    adapter_pack.fusion_settings([paths[0], str(tmp_path / "nope.npz")])


def test_packs_of_another_backbone_are_refused_before_any_assignment(
    packs, tmp_path):
  backbone, paths = packs
  other = tiny_encoder(vocab_size=60, hidden_size=16, inner_dim=32,
                       max_sequence_length=16, inner_activation="gelu",
                       type_vocab_size=2, seed=9)
  foreign = _pack(tmp_path, other, 6, seed=3)
  model, encoder = _fusion(backbone, paths)
  before = [v.numpy() for v in encoder.weights]
  with pytest.raises(UserInputError, match="another backbone"):
    adapter_pack.load_fused_adapters([paths[0], foreign], model, encoder)
  for variable, value in zip(encoder.weights, before):
    np.testing.assert_array_equal(variable.numpy(), value)


def test_fusion_mode_needs_sizes_and_sizes_need_fusion_mode():
  with pytest.raises(UserInputError, match="needs the adapter packs"):
    build_classifier(_backbone(), 2, "fusion")
  with pytest.raises(UserInputError, match="need fine_tune_mode=fusion"):
    build_classifier(_backbone(), 2, "adapter", fused_adapter_sizes=[4, 4])


@pytest.mark.large  # four driver runs on the real MiniLM
def test_driver_fuses_two_real_packs_and_the_fusion_pack_evaluates_alike(
    tmp_path):
  """run_classifier.py --fine_tune_mode=fusion --fuse_packs=A,B on the real
  MiniLM: the fused adapters come out of training exactly as A's and B's,
  the fusion pack records what rebuilds the model, and evaluating from it
  alone gives the trained run's dev results."""
  import harness  # pylint: disable=g-import-not-at-top
  data = harness.glue_subset(tmp_path / "data", dict(train=6, dev=6))
  flags = ["--task_name=MRPC", "--do_eval", f"--data_dir={data}",
           "--max_seq_length=32", "--train_batch_size=2"]
  run = lambda extra, out: harness.checked(harness.run_driver(
      "run_classifier.py", flags + extra + [f"--output_dir={tmp_path / out}"],
      timeout=900))
  for seed in (1, 2):
    run(["--do_train", "--adapter_type=pfeiffer", "--adapter_size=16",
         "--adapter_init_scale=0.05", f"--seed={seed}"], f"source{seed}")
  sources = [str(tmp_path / f"source{s}" / "adapter_pack.npz") for s in (1, 2)]
  stdout = run(["--do_train", "--fine_tune_mode=fusion",
                "--fuse_packs=" + ",".join(sources)], "fusion").stdout
  # 6 blocks x (two adapters of 2*384*16 + 384 + 16, query/key 384*384 + 384
  # each, value 384*384)
  assert "adapters 2,811,072" in stdout, stdout
  fusion_pack = tmp_path / "fusion" / "adapter_pack.npz"
  config, arrays = adapter_pack.read_pack(str(fusion_pack))
  assert (config["fine_tune_mode"], config["adapter_type"],
          config["fused_adapter_sizes"]) == ("fusion", "pfeiffer", [16, 16])
  for i, source in enumerate(sources):
    source_arrays = adapter_pack.read_pack(source)[1]
    fused = {k.replace(f"/adapter_{i}/", "/"): v for k, v in arrays.items()
             if f"/adapter_{i}/" in k}
    assert fused and set(fused) < set(source_arrays)
    for key, value in fused.items():
      np.testing.assert_array_equal(value, source_arrays[key])
  run([f"--adapter_pack={fusion_pack}", f"--export_dir={tmp_path / 'serve'}"],
      "eval")
  trained, reloaded = (
      [line for line in (tmp_path / d / "eval_results.txt").read_text(
      ).splitlines() if not line.startswith("global_step")]
      for d in ("fusion", "eval"))
  assert trained and trained == reloaded
  # The library rebuilds it from the pack alone, too (export's path).
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  model = AdapterTextClassifier.load_adapters(str(fusion_pack))
  assert model.task_config["fused_adapter_sizes"] == [16, 16]
  pairs = harness.mrpc_pairs(6)
  labels = [line.split("\t")[0] for line in (data / "dev.tsv").read_text(
      ).splitlines()[1:]]
  accuracy = model.evaluate_metrics(tuple(zip(*pairs)), labels,
                                    dynamic_padding=False)["accuracy"]
  assert f"eval_accuracy = {accuracy:.6f}" in trained
  # The exported SavedModel, in a fresh process, serves what Keras computes.
  served = harness.checked(subprocess.run(
      [sys.executable, "-c", _SERVE, str(tmp_path / "serve"),
       json.dumps(pairs)], capture_output=True, text=True, timeout=300,
      env=harness.subprocess_env()))
  np.testing.assert_allclose(json.loads(served.stdout.splitlines()[-1]),
                             model.predict_proba(tuple(zip(*pairs))),
                             atol=1e-5)


_SERVE = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # the raw-text signature's ops
pairs = json.loads(sys.argv[2])
out = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](
    text_a=tf.constant([a for a, _ in pairs]),
    text_b=tf.constant([b for _, b in pairs]))
print(json.dumps(out["probabilities"].numpy().tolist()))
"""
