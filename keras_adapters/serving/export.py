"""Single-task SavedModel export (raw-text and token-id signatures).

Signatures of the exported SavedModel (tag "serve"):

* ``serving_default``: ``text_a`` (tf.string [batch]) and, for pair tasks,
  ``text_b``; tokenized in the graph with the same Model Garden
  `BertTokenizer` + `BertPackInputs` layers as training (needs
  ``import tensorflow_text`` in Python, or TF Text ops in the server);
* ``serving_ids``: ``input_word_ids``, ``input_mask``, ``input_type_ids``
  (tf.int32 [batch, seq_len], seq_len <= max position embeddings); plain TF ops.

Both return ``logits`` [batch, C], ``probabilities`` [batch, C] (softmax;
for regression the score itself), ``label`` (tf.string [batch], the argmax
label; for regression the score formatted), ``score`` [batch] (probability
of the predicted label; for regression the predicted value).

CLI: python -m keras_adapters.serving.export --adapter_pack=P --export_dir=D
"""

import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top
from official.nlp.modeling import layers as nlp_layers

from keras_adapters.errors import UserInputError
from keras_adapters.data.features import MAX_SEQ_LENGTH_LIMIT

# Pair tasks by canonical GLUE name (packs record task_name, not the layout).
PAIR_TASKS = {"mrpc", "sts-b", "qqp", "mnli", "mnli-mm", "qnli", "rte", "wnli"}
IDS = ("input_word_ids", "input_mask", "input_type_ids")


def task_is_pair(config):
  """Whether the pack's task takes two texts (config "is_pair" or GLUE name)."""
  if "is_pair" in config:
    return bool(config["is_pair"])
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  try:
    return glue.canonical_task_name(config.get("task_name", "")) in PAIR_TASKS
  except Exception:  # unknown names: single sentence unless is_pair says so
    return False


def check_max_seq_length(max_seq_length, is_pair, encoder):
  limit = min(MAX_SEQ_LENGTH_LIMIT, encoder.get_config().get(
      "max_sequence_length", MAX_SEQ_LENGTH_LIMIT))
  need = 3 if is_pair else 2
  if not isinstance(max_seq_length, int) or not need <= max_seq_length <= limit:
    raise UserInputError(f"max_seq_length {max_seq_length!r} out of range "
                         f"{need}..{limit}; pass e.g. max_seq_length=128")
  return limit


def make_text_layers(vocab_file, do_lower_case, max_seq_length):
  """(tokenizer, packer, packer_single_if_needed) Keras layers (TF Text)."""
  if not os.path.isfile(vocab_file):
    raise UserInputError(f"vocab file {vocab_file} not found; pass the "
                         "backbone's vocab.txt")
  tokenizer = nlp_layers.BertTokenizer(vocab_file=vocab_file,
                                       lower_case=do_lower_case)
  packer = nlp_layers.BertPackInputs(
      max_seq_length, special_tokens_dict=tokenizer.get_special_tokens_dict())
  return tokenizer, packer


def rank_checked(*tensors):
  """Runtime shape checks: signature inputs are not shape-checked on load
  (a [batch, 1] string tensor would otherwise be accepted)."""
  return [tf.ensure_shape(t, t.shape) for t in tensors]


def check_ids(word_ids, mask, type_ids, vocab_size, max_positions):
  """Graph-side checks of client-made token ids; returns the three tensors."""
  word_ids, mask, type_ids = rank_checked(word_ids, mask, type_ids)
  shape = tf.shape(word_ids)
  checks = [
      tf.debugging.assert_equal(
          shape, tf.shape(mask),
          message="input_mask must have the shape of input_word_ids"),
      tf.debugging.assert_equal(
          shape, tf.shape(type_ids),
          message="input_type_ids must have the shape of input_word_ids"),
      tf.debugging.assert_less_equal(
          shape[1], max_positions,
          message=f"sequence length must be <= {max_positions} (the model's "
          "position embeddings); truncate the token ids"),
      tf.debugging.assert_non_negative(
          word_ids, message="input_word_ids must be >= 0"),
      tf.debugging.assert_less(
          word_ids, vocab_size,
          message=f"input_word_ids must be < vocab size {vocab_size}"),
      tf.debugging.assert_non_negative(
          type_ids, message="input_type_ids must be 0 or 1"),
      tf.debugging.assert_less(
          type_ids, 2, message="input_type_ids must be 0 or 1"),
  ]
  with tf.control_dependencies(checks):
    return (tf.identity(word_ids), tf.identity(mask), tf.identity(type_ids))


def format_outputs(logits, labels, is_regression):
  """Dict of serving outputs from logits [batch, C]."""
  if is_regression:
    score = logits[:, 0]
    return dict(logits=logits, probabilities=logits, score=score,
                label=tf.strings.as_string(score, precision=6))
  probabilities = tf.nn.softmax(logits, axis=-1)
  index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
  return dict(logits=logits, probabilities=probabilities,
              score=tf.reduce_max(probabilities, axis=-1),
              label=tf.gather(tf.constant(labels), index))


class _Untracked:
  """Holds an object out of SavedModel tracking (only its variables go in)."""

  def __init__(self, value):
    self.value = value


def named_variables(model, encoder):
  """{stable name: variable} of `model`, encoder names as in adapter packs."""
  from keras_adapters.adapter_pack import _key  # pylint: disable=g-import-not-at-top
  encoder_ids = set(map(id, encoder.weights))
  named = {}
  for variable in model.variables:
    key = _key(variable, encoder_ids).replace(":0", "")
    while key in named:
      key += "_"
    named[key] = variable
  return named


class ClassifierServer(tf.Module):
  """A Keras classifier plus its tokenizer, with the two serving functions."""

  def __init__(self, model, encoder, *, vocab_file, do_lower_case, labels,
               is_regression, is_pair, max_seq_length, task_name=""):
    super().__init__(name="classifier_server")
    self.max_positions = check_max_seq_length(max_seq_length, is_pair, encoder)
    # The SavedModel holds the model's variables (by stable name) and the
    # traced signatures, not Keras layer metadata: faster, and plain TF.
    self._model = _Untracked(model)
    self.model_variables = named_variables(model, encoder)
    self.tokenizer, self.packer = make_text_layers(vocab_file, do_lower_case,
                                                   max_seq_length)
    self.vocab_size = int(encoder.get_config()["vocab_size"])
    self._labels = list(labels or [])
    self._is_regression = bool(is_regression)
    self.is_pair = bool(is_pair)
    if not self._is_regression and not self._labels:
      raise UserInputError("a classifier export needs its label strings")
    self.max_seq_length = max_seq_length
    self.task_name = tf.Variable(task_name or "", trainable=False,
                                 name="task_name")

  def _outputs(self, word_ids, mask, type_ids):
    logits = self._model.value(dict(input_word_ids=word_ids, input_mask=mask,
                             input_type_ids=type_ids), training=False)
    return format_outputs(logits, self._labels, self._is_regression)

  def pack(self, text_a, text_b=None):
    segments = [self.tokenizer(text_a)]
    if text_b is not None:
      segments.append(self.tokenizer(text_b))
    packed = self.packer(segments)
    return [packed[k] for k in IDS]

  def serve_text(self, text_a, text_b=None):
    text_a, = rank_checked(text_a)
    if text_b is not None:
      text_b, = rank_checked(text_b)
      tf.debugging.assert_equal(
          tf.size(text_a), tf.size(text_b),
          message="text_a and text_b must have the same batch size")
    return self._outputs(*self.pack(text_a, text_b))

  def serve_ids(self, input_word_ids, input_mask, input_type_ids):
    return self._outputs(*check_ids(input_word_ids, input_mask,
                                    input_type_ids, self.vocab_size,
                                    self.max_positions))

  def signatures(self, include_text=True):
    text = tf.TensorSpec([None], tf.string)
    ids = tf.TensorSpec([None, None], tf.int32)
    if self.is_pair:
      text_fn = tf.function(lambda text_a, text_b: self.serve_text(
          text_a, text_b), input_signature=[text, text])
    else:
      text_fn = tf.function(lambda text_a: self.serve_text(text_a),
                            input_signature=[text])
    ids_fn = tf.function(
        lambda input_word_ids, input_mask, input_type_ids: self.serve_ids(
            input_word_ids, input_mask, input_type_ids),
        input_signature=[ids, ids, ids])
    # Named text_a/text_b etc. in the SignatureDef (from the lambda args).
    self.ids_fn = ids_fn
    if not include_text:  # plain TF ops only: no TF Text needed to load
      ids_concrete = ids_fn.get_concrete_function()
      return {"serving_default": ids_concrete, "serving_ids": ids_concrete}
    self.text_fn = text_fn
    return {"serving_default": text_fn.get_concrete_function(),
            "serving_ids": ids_fn.get_concrete_function()}


def check_export_dir(export_dir):
  """Refuses an export_dir holding anything (exports never overwrite)."""
  if os.path.exists(os.path.join(export_dir, "saved_model.pb")):
    raise UserInputError(f"{export_dir} already holds a SavedModel; pass a "
                         "new (e.g. versioned) --export_dir")
  if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or
                                     os.listdir(export_dir)):
    raise UserInputError(f"{export_dir} exists and is not an empty "
                         "directory; pass a new (e.g. versioned) --export_dir")


def _save(module, export_dir, signatures, assets=None):
  """Saves into a hidden sibling, then renames: a killed export never leaves
  a half-written SavedModel where TF Serving (or a re-run) would find it."""
  del assets
  check_export_dir(export_dir)
  parent = os.path.dirname(os.path.abspath(export_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
  try:
    tf.saved_model.save(module, tmp, signatures=signatures)
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a server may run as another user
    if os.path.isdir(export_dir):
      os.rmdir(export_dir)  # empty (checked above)
    os.replace(tmp, export_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return export_dir


def export_classifier(export_dir, model, encoder, *, vocab_file,
                      do_lower_case, labels, is_regression, is_pair,
                      max_seq_length=128, task_name="", include_text=True):
  """Writes a TF Serving SavedModel of the Keras classifier `model`.

  Args:
    export_dir: new directory (TF Serving wants <base>/<version>/).
    model, encoder: from `build_classifier` (trained or pack-loaded).
    vocab_file, do_lower_case: the backbone's tokenizer.
    labels: label strings (classifiers); is_regression: one score output.
    is_pair: two text inputs (text_a, text_b) in serving_default.
    max_seq_length: texts are truncated to this many wordpieces.
    include_text: False writes only the token-id signature (also as
      serving_default): plain TF ops, loadable without TF Text (e.g. by
      `saved_model_cli run` or a tensorflow_model_server lacking TF Text).
  Returns: export_dir.
  """
  server = ClassifierServer(
      model, encoder, vocab_file=vocab_file, do_lower_case=do_lower_case,
      labels=labels, is_regression=is_regression, is_pair=is_pair,
      max_seq_length=max_seq_length, task_name=task_name)
  return _save(server, export_dir, server.signatures(include_text))


def model_from_pack(pack_path, pretrained=None, **load_kwargs):
  """(model, encoder, config, pretrained): a classifier with the pack loaded.

  `pretrained` defaults to `load_pretrained(**load_kwargs)` (the backbone
  the pack was trained on; the fingerprint check rejects another one).
  """
  from keras_adapters import adapter_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.classifier import build_classifier
  from keras_adapters.loaders import load_pretrained
  config, _ = adapter_pack.read_pack(pack_path)
  if pretrained is None:
    pretrained = load_pretrained(**load_kwargs)
  num_classes = 1 if config.get("is_regression") else len(config["labels"])
  model, encoder = build_classifier(
      pretrained.encoder, num_classes, config.get("fine_tune_mode", "adapter"),
      config.get("adapter_size", 64), top_k_layers=config.get("top_k_layers",
                                                              1))
  adapter_pack.load_adapter_pack(pack_path, model, encoder)
  return model, encoder, config, pretrained


def export_pack(pack_path, export_dir, pretrained=None, max_seq_length=None,
                is_pair=None, include_text=True, **load_kwargs):
  """Exports the task of the adapter pack at `pack_path` on its backbone."""
  model, encoder, config, pretrained = model_from_pack(pack_path, pretrained,
                                                       **load_kwargs)
  return export_classifier(
      export_dir, model, encoder, vocab_file=pretrained.vocab_file,
      do_lower_case=pretrained.do_lower_case, labels=config.get("labels"),
      is_regression=config.get("is_regression", False),
      is_pair=task_is_pair(config) if is_pair is None else is_pair,
      max_seq_length=max_seq_length or config.get("max_seq_length", 128),
      task_name=config.get("task_name", ""), include_text=include_text)


def _main():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from keras_adapters import driver_flags
  fl = flags.FLAGS
  packs = list(fl.adapter_pack or [])
  if fl.output_dir:
    packs.append(os.path.join(fl.output_dir, "adapter_pack.npz"))
  if not packs or not fl.export_dir:
    raise UserInputError("pass --export_dir and --adapter_pack (or "
                         "--output_dir of a run_classifier.py training run)")
  # Check what is cheap to check before the backbone loads.
  check_export_dir(fl.export_dir)
  from keras_adapters.serving.multitask import check_packs  # pylint: disable=g-import-not-at-top
  check_packs(packs, multitask=len(packs) > 1 or fl.multitask)
  pretrained = driver_flags.load_pretrained_from_flags()
  if len(packs) == 1 and not fl.multitask:
    export_pack(packs[0], fl.export_dir, pretrained, fl.max_seq_length,
                include_text=not fl.ids_only)
  else:
    from keras_adapters.serving.multitask import export_multitask  # pylint: disable=g-import-not-at-top
    export_multitask(packs, fl.export_dir, pretrained, fl.max_seq_length,
                     include_text=not fl.ids_only)
  print(f"Exported {len(packs)} task(s) to {fl.export_dir}")


def main():
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags
  from keras_adapters import driver_flags
  driver_flags.define_model_flags()
  flags.DEFINE_list("adapter_pack", None, "Pack(s) (adapter_pack.npz); "
                    "several = one multi-task SavedModel.")
  flags.DEFINE_string("output_dir", None, "A run_classifier.py output_dir "
                      "(its adapter_pack.npz is exported).")
  flags.DEFINE_string("export_dir", None, "New SavedModel directory.")
  flags.DEFINE_integer("max_seq_length", None, "Default: the pack's (max).")
  flags.DEFINE_bool("multitask", False, "Multi-task export even for 1 pack.")
  flags.DEFINE_bool("ids_only", False, "Token-id signature only (no TF Text "
                    "ops; for servers/tools without TF Text).")
  app.run(driver_flags.main_with_clean_errors(_main, "export"))


if __name__ == "__main__":
  main()
