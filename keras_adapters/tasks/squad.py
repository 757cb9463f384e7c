"""Extractive question answering (SQuAD v1.1/v2.0) as a task of the
experiment runner: windows, span model, n-best answers and official scores.

Text -> ids here is Model Garden's squad_lib (its WordPiece tokenizer maps
every wordpiece back to the context's characters, which answer spans need).
"""

import json
import os
import time

from keras_adapters.errors import UserInputError


class SquadOptions:
  """The SQuAD flags a task needs (windows, batching, n-best, SQuAD 2.0);
  `bucket_boundaries`: False or those of --bucket_by_length."""

  def __init__(self, flag_values, bucket_boundaries=False):
    f = flag_values
    self.bucket_boundaries = bucket_boundaries
    self.window = dict(max_seq_length=f.max_seq_length,
                       doc_stride=f.doc_stride,
                       max_query_length=f.max_query_length)
    self.predict_batch_size = f.predict_batch_size
    self.group_by_length = f.group_by_length
    self.n_best_size, self.max_answer_length = (f.n_best_size,
                                                f.max_answer_length)
    self.version_2 = f.version_2_with_negative
    self.null_score_diff_threshold = f.null_score_diff_threshold


def _write_json(path, obj):
  from keras_adapters.saving import atomic  # pylint: disable=g-import-not-at-top
  atomic.write_atomically(path, json.dumps(obj, indent=4) + "\n")


class SquadTask:
  """run_squad.py's task; reads (and so checks) its files up front."""

  def __init__(self, options, train_file=None, predict_file=None):
    from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
    self.options = options
    self.files = dict(train=train_file, predict=predict_file)
    self.squad = {}
    for name, path in self.files.items():
      if path:
        self.squad[name] = data.read_squad_file(path, name == "train",
                                                options.version_2)
        if not self.squad[name].examples:
          usable = "training question" if name == "train" else "question"
          raise UserInputError(f"{path}: no usable {usable}")
    self.features = {}
    self.pretrained = None

  def check_pack(self, config, path):
    if config.get("task_name") != "squad":
      raise UserInputError(f"{path} was trained for task "
                           f"{config.get('task_name')!r}, not SQuAD; use the "
                           "pack of a run_squad.py run")

  def prepare(self, pretrained, settings):
    """Cuts the questions into windows of the backbone's wordpieces."""
    del settings
    from absl import logging  # pylint: disable=g-import-not-at-top
    from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
    self.pretrained = pretrained
    window = self.options.window
    max_positions = pretrained.encoder.get_config().get("max_sequence_length")
    if max_positions and window["max_seq_length"] > max_positions:
      raise UserInputError(f"--max_seq_length {window['max_seq_length']} "
                           f"exceeds the model's {max_positions} positions")
    tokenizer = data.CachedTokenizer(pretrained.vocab_file,
                                     pretrained.do_lower_case)
    # squad_lib logs its first 20 windows at INFO; --verbosity=1 shows them.
    verbosity = logging.get_verbosity()
    if verbosity < logging.DEBUG:
      logging.set_verbosity(logging.WARNING)
    for name, squad in self.squad.items():
      start = time.time()
      self.features[name] = data.convert_examples_to_features(
          squad.examples, tokenizer, is_training=name == "train", **window)
      print(f"{name}: {len(squad.examples)} questions from {squad.path} -> "
            f"{len(self.features[name])} windows of "
            f"{window['max_seq_length']} ({time.time() - start:.0f}s)")
    logging.set_verbosity(verbosity)

  def build_model(self, pretrained, settings):
    from keras_adapters.squad import model as squad_model  # pylint: disable=g-import-not-at-top
    return squad_model.build_span_labeler(pretrained.encoder,
                                          settings.adapter_config())

  def compile(self, model, settings, total_steps):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from keras_adapters.training import optimizers  # pylint: disable=g-import-not-at-top
    from keras_adapters.squad import model as squad_model  # pylint: disable=g-import-not-at-top
    from keras_adapters.training import precision  # pylint: disable=g-import-not-at-top
    model.compile(
        optimizer=precision.configure_optimizer(optimizers.create_optimizer(
            settings.learning_rate, total_steps, settings.warmup_proportion),
                                                model.dtype_policy),
        loss=[squad_model.span_loss(), squad_model.span_loss()],
        loss_weights=[0.5, 0.5], jit_compile=settings.jit_compile)
    optimizers.create_step_variables(model, (tf.zeros([1], tf.int32),) * 2)

  def num_train_examples(self):
    return len(self.features.get("train", []))

  def num_train_batches(self, model, settings):
    del model
    from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
    return data.train_steps_per_epoch(self.features.get("train", []),
                                      settings.train_batch_size,
                                      self.options.bucket_boundaries)

  def train_batches(self, model, settings, skip):
    del model
    from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
    return data.train_dataset(self.features["train"],
                              settings.train_batch_size, settings.seed, skip,
                              self.options.group_by_length,
                              self.options.bucket_boundaries)

  def train_callbacks(self, model, settings, steps_per_epoch, chief):
    del model, settings, steps_per_epoch, chief
    return []

  def pack_config(self, model, settings, pretrained):
    del model
    return dict(
        task_name="squad", version_2_with_negative=self.options.version_2,
        **settings.adapter_config().to_dict(), model=pretrained.description,
        do_lower_case=pretrained.do_lower_case, **self.options.window)

  def after_training(self, model, encoder, settings, step, chief, strategy):
    del encoder, strategy
    if "predict" not in self.squad:
      return
    start = time.time()
    predictions = self._predict(model)
    if not chief:  # only the chief writes results
      return
    print(f"Predicted {len(self.features['predict'])} windows in "
          f"{time.time() - start:.0f}s")
    self._write_predictions(predictions, settings.output_dir, start)
    self._evaluate(predictions, settings.output_dir, step)

  def _predict(self, model):
    """(predictions, nbest, null_odds) of the predict file's questions."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    from keras_adapters.training import distribute  # pylint: disable=g-import-not-at-top
    from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
    features, batch = self.features["predict"], self.options.predict_batch_size
    # Full batches (static shapes, even replica split); drop the padding.
    batches = distribute.padded_batches(data.predict_dataset(features, batch),
                                        len(features), batch)
    start_logits, end_logits = (
        np.asarray(logits[:len(features)], np.float32)  # 16-bit if mixed
        for logits in model.predict(batches, verbose=0))
    o = self.options
    return data.postprocess(
        self.squad["predict"].examples, features, start_logits, end_logits,
        n_best_size=o.n_best_size, max_answer_length=o.max_answer_length,
        do_lower_case=self.pretrained.do_lower_case,
        version_2_with_negative=o.version_2,
        null_score_diff_threshold=o.null_score_diff_threshold)

  def _write_predictions(self, outputs, out, start):
    predictions, nbest, null_odds = outputs
    _write_json(os.path.join(out, "predictions.json"), predictions)
    _write_json(os.path.join(out, "nbest_predictions.json"), nbest)
    written = "predictions.json, nbest_predictions.json"
    if self.options.version_2:
      _write_json(os.path.join(out, "null_odds.json"), null_odds)
      written += ", null_odds.json"
    print(f"Wrote {written} ({len(predictions)} questions) to {out} "
          f"({time.time() - start:.0f}s in all)")

  def _evaluate(self, outputs, out, step):
    """Official EM/F1 into eval_results.txt, when the file has answers."""
    from keras_adapters.saving import atomic  # pylint: disable=g-import-not-at-top
    from keras_adapters.squad import evaluate  # pylint: disable=g-import-not-at-top
    predictions, _, null_odds = outputs
    squad, version_2 = self.squad["predict"], self.options.version_2
    if not squad.has_answers:
      print(f"{self.files['predict']} has no gold answers for every "
            "question: not evaluated")
      return
    result = evaluate.evaluate(squad.articles, predictions, version_2)
    if version_2:
      with_odds = evaluate.evaluate(squad.articles, predictions, True,
                                    null_odds)
      result.update({k: v for k, v in with_odds.items()
                     if k.startswith("best_")})
    text = evaluate.format_results(result, step)
    path = os.path.join(out, "eval_results.txt")
    atomic.write_atomically(path, text)
    print(f"***** Eval results ({squad.num_questions} questions, official "
          f"SQuAD v{'2.0' if version_2 else '1.1'} metrics) -> {path}")
    print(text, end="")
