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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top

from keras_adapters.errors import UserInputError
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
from keras_adapters.serving import common
from keras_adapters.serving.common import IDS  # pylint: disable=unused-import


def task_is_pair(config, path="the pack"):
  """Whether the pack's task takes two texts: its "is_pair", or for a pack
  saved before it recorded that, the GLUE task's layout."""
  if config.get("is_pair") is not None:
    return bool(config["is_pair"])
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  task = config.get("task_name") or "generic"
  if glue.canonical_task_name(task) == "generic":
    raise UserInputError(f"{path} does not record whether its task takes one "
                         "text or a pair (saved by an older version); pass "
                         "--is_pair or --nois_pair")
  return glue.get_processor(task).is_pair


class ClassifierServer(tf.Module):
  """A Keras classifier plus its tokenizer, with the two serving functions."""

  def __init__(self, model, encoder, *, preprocessor, labels, is_regression,
               is_pair, task_name=""):
    super().__init__(name="classifier_server")
    self.max_positions = common.max_positions(preprocessor.max_seq_length,
                                              is_pair, encoder)
    # The SavedModel holds the model's variables (by stable name) and the
    # traced signatures, not Keras layer metadata: faster, and plain TF.
    self._model = common.Untracked(model)
    self.model_variables = common.named_variables(model, encoder)
    self.preprocessor = preprocessor
    self.vocab_size = int(encoder.get_config()["vocab_size"])
    self._labels = list(labels or [])
    self._is_regression = bool(is_regression)
    self.is_pair = bool(is_pair)
    if not self._is_regression and not self._labels:
      raise UserInputError("a classifier export needs its label strings")
    self.max_seq_length = preprocessor.max_seq_length
    self.task_name = tf.Variable(task_name or "", trainable=False,
                                 name="task_name")

  def _outputs(self, word_ids, mask, type_ids):
    logits = self._model.value(dict(input_word_ids=word_ids, input_mask=mask,
                             input_type_ids=type_ids), training=False)
    return common.format_outputs(logits, self._labels, self._is_regression)

  def serve_text(self, text_a, text_b=None):
    text_a, = common.rank_checked(text_a)
    if text_b is not None:
      text_b, = common.rank_checked(text_b)
      tf.debugging.assert_equal(
          tf.size(text_a), tf.size(text_b),
          message="text_a and text_b must have the same batch size")
    packed = self.preprocessor(text_a, text_b)
    return self._outputs(*[packed[k] for k in IDS])

  def serve_ids(self, input_word_ids, input_mask, input_type_ids):
    return self._outputs(*common.check_ids(input_word_ids, input_mask,
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


def export_classifier(export_dir, model, encoder, *, labels, is_regression,
                      is_pair, preprocessor=None, vocab_file=None,
                      do_lower_case=True, max_seq_length=128, task_name="",
                      include_text=True):
  """Writes a TF Serving SavedModel of the Keras classifier `model`.

  Args:
    export_dir: new directory (TF Serving wants <base>/<version>/).
    model, encoder: a trained or pack-loaded classifier and its encoder.
    labels: label strings (classifiers); is_regression: one score output.
    is_pair: two text inputs (text_a, text_b) in serving_default.
    preprocessor: the model's `AdapterTextPreprocessor`; else one is built
      from vocab_file, do_lower_case and max_seq_length.
    include_text: False writes only the token-id signature (also as
      serving_default): plain TF ops, loadable without TF Text (e.g. by
      `saved_model_cli run` or a tensorflow_model_server lacking TF Text).
  Returns: export_dir.
  """
  if preprocessor is None:
    preprocessor = AdapterTextPreprocessor(vocab_file, do_lower_case,
                                           max_seq_length)
  server = ClassifierServer(
      model, encoder, preprocessor=preprocessor, labels=labels,
      is_regression=is_regression, is_pair=is_pair, task_name=task_name)
  return common.save(server, export_dir, server.signatures(include_text))


def export_pack(pack_path, export_dir, pretrained=None, max_seq_length=None,
                is_pair=None, include_text=True, **load_kwargs):
  """Exports the task of the adapter pack at `pack_path` on its backbone
  (`pretrained`, else `load_pretrained(**load_kwargs)`)."""
  from keras_adapters.adapter_pack import read_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.loaders import load_pretrained  # pylint: disable=g-import-not-at-top
  from keras_adapters.models import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  config, _ = read_pack(pack_path)
  is_pair = task_is_pair(config, pack_path) if is_pair is None else is_pair
  if pretrained is None:
    pretrained = load_pretrained(**load_kwargs)
  if max_seq_length:
    config = dict(config, max_seq_length=max_seq_length)
  model = AdapterTextClassifier.load_adapters(
      pack_path, pretrained=pretrained, max_seq_length=config.get(
          "max_seq_length", 128))
  model.task_config["is_pair"] = is_pair
  return model.export(export_dir, include_text=include_text)


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
  common.check_export_dir(fl.export_dir)
  from keras_adapters.serving import multitask  # pylint: disable=g-import-not-at-top
  configs, _ = multitask.check_packs(packs, multitask=len(packs) > 1 or
                                     fl.multitask)
  is_pair = [fl.is_pair if fl.is_pair is not None else task_is_pair(c, p)
             for c, p in zip(configs, packs)]
  pretrained = driver_flags.load_pretrained_from_flags()
  if len(packs) == 1 and not fl.multitask:
    export_pack(packs[0], fl.export_dir, pretrained, fl.max_seq_length,
                is_pair[0], include_text=not fl.ids_only)
  else:
    multitask.export_multitask(packs, fl.export_dir, pretrained,
                               fl.max_seq_length, include_text=not fl.ids_only,
                               is_pair=is_pair)
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
  flags.DEFINE_bool("is_pair", None, "Whether the task takes text pairs; "
                    "only for packs that do not record it (older versions).")
  flags.DEFINE_bool("ids_only", False, "Token-id signature only (no TF Text "
                    "ops; for servers/tools without TF Text).")
  app.run(driver_flags.main_with_clean_errors(_main, "export"))


if __name__ == "__main__":
  main()
