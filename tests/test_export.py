"""SavedModel export for TF Serving: reload in a fresh process and compare.

One module fixture loads the real all-MiniLM-L6-v2 backbone, makes three
distinct (untrained, perturbed) adapter packs for SST-2 / MRPC / STS-B,
computes the in-memory Keras outputs on real dev sentences and exports five
SavedModels; one child process (plain `import tensorflow_text`, no repo code)
loads them all and runs the signatures, including bad inputs.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from harness import GLUE_DIR, REPO, subprocess_env

from keras_adapters.saving import adapter_pack
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.data import glue
from keras_adapters import AdapterTextPreprocessor
from keras_adapters.errors import UserInputError
from keras_adapters.serving import export_multitask, export_pack
from keras_adapters import AdapterTextClassifier

pytestmark = pytest.mark.large  # SavedModel exports, reloaded in fresh processes

SEQ = 64
TASKS = {"sst-2": (["0", "1"], False, False), "mrpc": (["0", "1"], False, True),
         "sts-b": (None, True, True)}
N_DEV = 6
LONG = " ".join(["extraordinarily"] * 400)  # >> SEQ wordpieces

_CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the TF Text ops of serving_default
spec = json.load(sys.stdin)
out = {}
def run(fn, **kw):
  try:
    return {k: (v.numpy().astype(str).tolist() if v.dtype == tf.string
                else v.numpy().tolist()) for k, v in fn(**kw).items()}
  except Exception as e:  # the message is what a client sees
    return {"error": f"{type(e).__name__}: {e}"[:600]}
for name, calls in spec.items():
  model = tf.saved_model.load(calls.pop("__dir__"))
  out[name] = {}
  for key, (sig, kw) in calls.items():
    kw = {k: (tf.constant(v, dtype=getattr(tf, d)) if d else v)
          for k, (d, v) in kw.items()}
    out[name][key] = run(model.signatures[sig], **kw)
print(json.dumps(out))
"""


def _dev(task, n=N_DEV):
  examples = glue.get_processor(task).get_examples(str(GLUE_DIR / task.upper()),
                                                   "dev")[:n]
  a = [e.text_a for e in examples] + ["", LONG]
  b = [e.text_b or "" for e in examples] + ["", LONG]
  return a, b


def _reference(model, pretrained, is_pair, is_regression, a, b):
  pack = AdapterTextPreprocessor(pretrained.vocab_file,
                                 pretrained.do_lower_case, SEQ)
  x = pack(tf.constant(a), tf.constant(b) if is_pair else None)
  logits = model(x, training=False).numpy()
  probs = logits if is_regression else tf.nn.softmax(logits).numpy()
  return probs, {k: v.numpy().tolist() for k, v in x.items()}


def _task_packs(root, pre):
  """An adapter pack per task of TASKS, with distinct non-trivial weights,
  and the in-process reference outputs (and ids) of each on its dev texts."""
  packs, ref, ids = {}, {}, {}
  for i, (task, (labels, reg, pair)) in enumerate(TASKS.items()):
    tf_keras.utils.set_random_seed(i)
    model, encoder = build_classifier(pre.encoder, 1 if reg else 2, "adapter",
                                      16, adapter_init_scale=0.05)
    for v in model.trainable_variables:  # distinct, non-trivial per task
      v.assign(v + tf.random.normal(v.shape, stddev=0.02))
    packs[task] = str(root / f"{task}.npz")
    adapter_pack.save_adapter_pack(packs[task], model, encoder, dict(
        task_name=task, labels=labels, is_regression=reg,
        fine_tune_mode="adapter", adapter_size=16, top_k_layers=1,
        max_seq_length=SEQ, model="preset all-MiniLM-L6-v2"))
    loaded = AdapterTextClassifier.load_adapters(packs[task], pretrained=pre)
    a, b = _dev(task)
    ref[task], ids[task] = _reference(loaded, pre, pair, reg, a, b)
    ref[task + "/texts"] = (a, b)
  return packs, ref, ids


def _export_all(packs, root, pre):
  """The single-task and multi-task SavedModels, text and ids-only."""
  dirs = dict(mrpc=root / "mrpc" / "1", sst2=root / "sst2" / "1",
              stsb_ids=root / "stsb_ids" / "1", mt3=root / "mt3" / "1",
              mt2_ids=root / "mt2_ids" / "1")
  export_pack(packs["mrpc"], str(dirs["mrpc"]), pre)
  export_pack(packs["sst-2"], str(dirs["sst2"]), pre)
  export_pack(packs["sts-b"], str(dirs["stsb_ids"]), pre, include_text=False)
  export_multitask([packs[t] for t in TASKS], str(dirs["mt3"]), pre, SEQ)
  export_multitask([packs["sst-2"], packs["mrpc"]], str(dirs["mt2_ids"]), pre,
                   SEQ, include_text=False)
  return dirs


def _interleaved(ref):
  """(task, text_a, text_b) lists that interleave MRPC, SST-2 and STS-B."""
  ma, mb = ref["mrpc/texts"]
  sa, _ = ref["sst-2/texts"]
  ta, tb = ref["sts-b/texts"]
  mixed_task, mixed_a, mixed_b = [], [], []
  for k in range(N_DEV + 2):
    for task, (a, b) in (("mrpc", (ma, mb)), ("sst-2", (sa, sa)),
                         ("sts-b", (ta, tb))):
      mixed_task.append(task)
      mixed_a.append(a[k])
      mixed_b.append(b[k] if task != "sst-2" else "ignored text_b")
  return mixed_task, mixed_a, mixed_b


def _i32(v):
  return ("int32", v)


def _mrpc_requests(ref, m_ids):
  """MRPC's requests: good text and ids, then one of each bad input."""
  s = lambda v: ("string", v)
  ma, mb = ref["mrpc/texts"]
  ids_of = lambda words, mask, types: dict(
      input_word_ids=_i32(words), input_mask=_i32(mask),
      input_type_ids=_i32(types))
  return {
      "text": ("serving_default", dict(text_a=s(ma), text_b=s(mb))),
      "ids": ("serving_ids", {k: _i32(v) for k, v in m_ids.items()}),
      "int_text": ("serving_default", dict(text_a=_i32([1, 2]),
                                           text_b=_i32([1, 2]))),
      "2d_text": ("serving_default", dict(text_a=s([["a"], ["b"]]),
                                          text_b=s([["a"], ["b"]]))),
      "float_ids": ("serving_ids", dict(
          ids_of(m_ids["input_word_ids"], m_ids["input_mask"],
                 m_ids["input_type_ids"]),
          input_word_ids=("float32", m_ids["input_word_ids"]))),
      "1d_ids": ("serving_ids", ids_of([101, 102], [1, 1], [0, 0])),
      "mask_shape": ("serving_ids", ids_of([[101, 102, 0]], [[1, 1]],
                                           [[0, 0, 0]])),
      "oov_ids": ("serving_ids", ids_of([[101, 10 ** 6, 102]], [[1, 1, 1]],
                                        [[0, 0, 0]])),
      "too_long": ("serving_ids", ids_of([[101] * 600], [[1] * 600],
                                         [[0] * 600])),
      "batch_mismatch": ("serving_default", dict(text_a=s(["a", "b"]),
                                                 text_b=s(["a"])))}


def _requests(ref, ids, dirs, mixed):
  """{export: {request name: (signature, {input: (dtype, value)})}}."""
  s = lambda v: ("string", v)
  ma, _ = ref["mrpc/texts"]
  mixed_task, mixed_a, mixed_b = mixed
  return {
      "mrpc": {"__dir__": str(dirs["mrpc"]), **_mrpc_requests(ref,
                                                              ids["mrpc"])},
      "sst2": {"__dir__": str(dirs["sst2"]),
               "text": ("serving_default",
                        dict(text_a=s(ref["sst-2/texts"][0])))},
      "mt3": {"__dir__": str(dirs["mt3"]),
              "mixed": ("serving_default", dict(
                  task=s(mixed_task), text_a=s(mixed_a), text_b=s(mixed_b))),
              "unknown": ("serving_default", dict(
                  task=s(["mrpc", "qqp"]), text_a=s(["a", "b"]),
                  text_b=s(["a", "b"]))),
              "ids": ("serving_ids", dict(
                  task=s(["mrpc"] * len(ma)),
                  **{k: _i32(v) for k, v in ids["mrpc"].items()}))},
  }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  from keras_adapters.loaders.pretrained import load_pretrained
  root = tmp_path_factory.mktemp("export")
  pre = load_pretrained()
  packs, ref, ids = _task_packs(root, pre)
  dirs = _export_all(packs, root, pre)
  mixed = _interleaved(ref)
  spec = _requests(ref, ids, dirs, mixed)
  child = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(spec),
                         capture_output=True, text=True, cwd="/",
                         env=subprocess_env(), timeout=600)
  assert child.returncode == 0, child.stderr[-3000:]
  got = json.loads(child.stdout.strip().splitlines()[-1])
  return dict(got=got, ref=ref, dirs=dirs, mixed_task=mixed[0], packs=packs,
              pre=pre)


def _close(actual, expected):
  np.testing.assert_allclose(np.asarray(actual), expected, rtol=0, atol=1e-5)


def test_single_task_text_and_ids_match_keras(exported):
  got, ref = exported["got"], exported["ref"]
  _close(got["mrpc"]["text"]["probabilities"], ref["mrpc"])
  _close(got["mrpc"]["ids"]["probabilities"], ref["mrpc"])
  _close(got["sst2"]["text"]["probabilities"], ref["sst-2"])
  assert got["mrpc"]["text"]["label"] == [
      ["0", "1"][i] for i in ref["mrpc"].argmax(-1)]
  # The last two rows are the empty pair and the over-long pair (truncated).
  assert len(got["mrpc"]["text"]["label"]) == N_DEV + 2


def test_bad_inputs_give_clear_errors(exported):
  got = exported["got"]["mrpc"]
  for key, words in [("int_text", ["string", "int32"]),
                     ("2d_text", ["shape"]), ("float_ids", ["int32", "float"]),
                     ("1d_ids", ["shape"]),
                     ("mask_shape", ["input_mask must have the shape"]),
                     ("oov_ids", ["input_word_ids must be < vocab size"]),
                     ("too_long", ["sequence length must be <="]),
                     ("batch_mismatch", ["same batch size"])]:
    assert "error" in got[key], key
    for word in words:
      assert word in got[key]["error"], (key, got[key]["error"])


def test_multitask_mixed_batch_matches_single_task(exported):
  got, ref = exported["got"]["mt3"], exported["ref"]
  mixed = got["mixed"]
  seen = {t: 0 for t in TASKS}
  for row, task in enumerate(exported["mixed_task"]):
    expected = ref[task][seen[task]]
    seen[task] += 1
    n = 1 if TASKS[task][1] else 2
    assert mixed["num_classes"][row] == n
    _close(mixed["probabilities"][row][:n], expected)
    if TASKS[task][1]:
      _close(mixed["score"][row], expected[0])
  _close(got["ids"]["probabilities"], ref["mrpc"])
  assert "unknown task name" in got["unknown"]["error"]
  assert "qqp" in got["unknown"]["error"]


def test_backbone_bytes_identical_across_exports(exported):
  dirs = exported["dirs"]
  three = tf.train.load_checkpoint(str(dirs["mt3"] / "variables" / "variables"))
  two = tf.train.load_checkpoint(str(dirs["mt2_ids"] / "variables" / "variables"))
  shapes3 = three.get_variable_to_shape_map()
  shared = [k for k in two.get_variable_to_shape_map()
            if k in shapes3 and "task_variables" not in k and "_CHECKPOINTABLE"
            not in k and "encoder" in k]
  assert len(shared) > 50
  for key in shared:
    a, b = three.get_tensor(key), two.get_tensor(key)
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
  stacked = [k for k in shapes3 if "task_variables" in k and "VARIABLE_VALUE" in k]
  assert stacked and all(shapes3[k][0] == 3 for k in stacked)


def test_ids_only_export_runs_in_saved_model_cli(exported):
  cli = str(REPO / ".venv" / "bin" / "saved_model_cli")
  result = subprocess.run(
      [cli, "run", "--dir", str(exported["dirs"]["stsb_ids"]), "--tag_set",
       "serve", "--signature_def", "serving_ids", "--input_exprs",
       "input_word_ids=[[101,1037,2158,102,0]];input_mask=[[1,1,1,1,0]];"
       "input_type_ids=[[0,0,0,0,0]]"],
      capture_output=True, text=True, env=subprocess_env(), timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Result for output key score" in result.stdout


def test_multitask_rejects_unusable_packs(exported, tmp_path):
  pre, packs = exported["pre"], exported["packs"]
  with pytest.raises(UserInputError, match="distinct task names"):
    export_multitask([packs["mrpc"], packs["mrpc"]], str(tmp_path / "x"), pre)
  with pytest.raises(UserInputError, match="already holds a SavedModel"):
    export_pack(packs["mrpc"], str(exported["dirs"]["mrpc"]), pre)


@pytest.mark.parametrize("adapter_type", ["pfeiffer", "parallel"])
def test_one_adapter_per_block_packs_export_alone_and_together(tmp_path,
                                                               adapter_type):
  """Pfeiffer packs (one adapter per block, around the output LayerNorm) and
  parallel ones (beside the FFN) serve as they compute in Keras, one task per
  SavedModel and two tasks in one (reloaded in this process); a Houlsby pack
  cannot join them."""
  from keras_adapters.loaders.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
  pre = load_pretrained()
  packs, refs = {}, {}
  for i, (task, pack_type) in enumerate((("sst-2", adapter_type),
                                         ("mrpc", adapter_type),
                                         ("sts-b", "houlsby"))):
    labels, _, pair = TASKS[task]
    tf_keras.utils.set_random_seed(10 + i)
    model, encoder = build_classifier(pre.encoder, 2, "adapter", 16,
                                      adapter_init_scale=0.05,
                                      adapter_type=pack_type)
    packs[task] = str(tmp_path / f"{task}.npz")
    adapter_pack.save_adapter_pack(packs[task], model, encoder, dict(
        task_name=task, labels=["0", "1"], fine_tune_mode="adapter",
        adapter_type=pack_type, adapter_size=16, max_seq_length=SEQ))
    a, b = _dev(task)
    refs[task] = (a, b, _reference(model, pre, pair, False, a, b)[0])
  houlsby = packs.pop("sts-b")
  refs.pop("sts-b")
  export_pack(packs["mrpc"], str(tmp_path / "mrpc" / "1"), pre)
  export_multitask(list(packs.values()), str(tmp_path / "mt" / "1"), pre, SEQ)
  a, b, expected = refs["mrpc"]
  single = tf.saved_model.load(str(tmp_path / "mrpc" / "1"))
  out = single.signatures["serving_default"](text_a=tf.constant(a),
                                             text_b=tf.constant(b))
  np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
  multi = tf.saved_model.load(str(tmp_path / "mt" / "1"))
  for task, (a, b, expected) in refs.items():
    out = multi.signatures["serving_default"](
        task=tf.constant([task] * len(a)), text_a=tf.constant(a),
        text_b=tf.constant(b))
    np.testing.assert_allclose(out["probabilities"][:, :2], expected,
                               atol=1e-5)
  with pytest.raises(UserInputError, match="packs must share the adapter type"):
    export_multitask([packs["sst-2"], houlsby], str(tmp_path / "mixed"), pre)
