"""AdapterTextClassifier: BERT + adapters + head, with its preprocessor attached."""

import json

import numpy as np
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models
from official.nlp.modeling import networks

from keras_adapters import compat
from keras_adapters.config import AdapterConfig
from keras_adapters.config import check_task_name
from keras_adapters.data import features
from keras_adapters.data import glue
from keras_adapters.data import text_batches
from keras_adapters.data import trunk_cache as trunk_cache_lib
from keras_adapters.data.limits import check_max_seq_length
from keras_adapters.errors import UserInputError
from keras_adapters.models import task_inputs
from keras_adapters.models import tuning
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
from keras_adapters.networks.adapter_bert_encoder import backbone_config
from keras_adapters.networks.adapter_bert_encoder import build_encoder
from keras_adapters.saving import adapter_pack
from keras_adapters.training import distribute
from keras_adapters.training import optimizers
from keras_adapters.training import precision


def _task_facts(task_name, num_classes, labels, regression):
  """(labels or None, is_regression, is_pair or None, num_classes)."""
  is_pair = None
  if task_name and glue.canonical_task_name(task_name) != "generic":
    processor = glue.get_processor(task_name)
    labels = labels if labels is not None else processor.labels
    regression, is_pair = processor.is_regression, processor.is_pair
  if regression:
    if labels is not None or num_classes not in (None, 1):
      raise UserInputError("a regression task has one output: drop labels/"
                           "num_classes, or regression=True")
    return None, True, is_pair, 1
  if labels is not None:
    labels = [str(l) for l in labels]
    if num_classes not in (None, len(labels)) or len(set(labels)) < 2:
      raise UserInputError(f"labels {labels} must be >= 2 distinct labels "
                           f"(and match num_classes={num_classes})")
    return labels, False, is_pair, len(labels)
  if not isinstance(num_classes, int) or num_classes < 2:
    raise UserInputError("pass num_classes (>= 2), labels=[...], "
                         "regression=True, or a GLUE task_name")
  return None, False, is_pair, num_classes


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterTextClassifier(models.BertClassifier):
  """Sentence(-pair) classifier or regressor tuned with adapters.

  Model Garden's `BertClassifier` (pooled output, dropout, dense) over a
  pretrained encoder prepared for `fine_tune_mode` (adapters added for
  "adapter"), with an `AdapterTextPreprocessor` attached: `fit`, `predict`
  and `evaluate` take raw strings, or `(texts_a, texts_b)` for pairs.
  Without a `compile` call, `fit` uses the paper's AdamW (warmup 10 %,
  linear decay to 0) sized from its epochs and data.

  Build it with `from_preset`; `save_adapters`/`load_adapters` keep only
  what the task trained; `export` writes a TF Serving SavedModel.
  """

  def __init__(self, encoder, preprocessor, num_classes=None, *, labels=None,
               regression=False, task_name="", fine_tune_mode="adapter",
               adapter_type="houlsby", adapter_size=64,
               adapter_init_scale=1e-3, top_k_layers=1, dropout_rate=0.1,
               fused_adapter_sizes=(), leave_out=(), seed=None,
               model_description="", adapter_config=None, **kwargs):
    labels, regression, is_pair, num_classes = _task_facts(
        task_name, num_classes, labels, regression)
    config = adapter_config or AdapterConfig(
        fine_tune_mode=fine_tune_mode, adapter_type=adapter_type,
        adapter_size=adapter_size, adapter_init_scale=adapter_init_scale,
        top_k_layers=top_k_layers,
        fused_adapter_sizes=[int(m) for m in fused_adapter_sizes],
        leave_out=leave_out)
    encoder = tuning.prepare_encoder(encoder, config)
    super().__init__(
        encoder, num_classes=num_classes, dropout_rate=dropout_rate,
        initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
        **kwargs)
    tuning.set_fine_tune_mode(self, encoder, config)
    # Untracked: checkpoints hold exactly the variables of a BertClassifier.
    object.__setattr__(self, "_preprocessor", preprocessor)
    object.__setattr__(self, "seed", seed)
    object.__setattr__(self, "dropout_rate", dropout_rate)
    object.__setattr__(self, "task_config", dict(
        task_name=task_name and glue.canonical_task_name(task_name),
        name=kwargs.get("name") and check_task_name(kwargs["name"]),
        labels=labels, num_classes=num_classes, is_regression=regression,
        is_pair=is_pair, **config.to_dict(),
        max_seq_length=getattr(preprocessor, "max_seq_length", None),
        do_lower_case=getattr(preprocessor, "lower_case", None),
        model=model_description))

  @classmethod
  def from_pretrained(cls, pretrained, max_seq_length=128, fuse_packs=(),
                      **config):
    """Builds on a `keras_adapters.loaders.Pretrained` backbone."""
    task_inputs.check_positions(max_seq_length, pretrained.encoder)
    preprocessor = AdapterTextPreprocessor(
        pretrained.vocab_file, pretrained.do_lower_case, max_seq_length)
    if fuse_packs:
      config = {**adapter_pack.fusion_settings(fuse_packs), **config}
    model = cls(pretrained.encoder, preprocessor,
                model_description=pretrained.description, **config)
    if fuse_packs:
      adapter_pack.load_fused_adapters(fuse_packs, model, model.encoder)
    return model

  @classmethod
  def from_preset(cls, preset="all-MiniLM-L6-v2", *, seed=None,
                  bert_config_file=None, vocab_file=None, do_lower_case=None,
                  max_seq_length=128, **config):
    """A classifier on a pretrained BERT with fresh adapters and head.

    Args:
      preset: a preset name (all-MiniLM-L6-v2), or a path: a TF Hub BERT
        SavedModel directory, a Google TF1 or Model Garden checkpoint (with
        `bert_config_file`, or bert_config.json beside it), or a safetensors
        BERT directory.
      seed: seeds Python, NumPy and TF before the weights are created, and
        the shuffling of `fit`: the drivers' `--seed`.
      vocab_file, do_lower_case: default to the model's own.
      max_seq_length: wordpieces per example, [CLS] and [SEP]s included.
      **config: num_classes, labels (strings welcome), regression,
        task_name (a GLUE name sets labels, pairs and metrics),
        fine_tune_mode, adapter_type ("houlsby", the paper's two adapters per
        block; "pfeiffer", one after the feed-forward layer; "parallel", one
        beside it), adapter_size, adapter_init_scale, top_k_layers,
        leave_out (blocks without adapters, e.g. [0, 1, 2]: AdapterDrop;
        see `fit`'s trunk_cache), dropout_rate, and fuse_packs: paths of
        two or more adapter packs
        of one adapter_type to fuse (AdapterFusion; fine_tune_mode
        "fusion" then trains the fusion, the LayerNorms and the head);
        adapter_config: a keras_adapters.config.AdapterConfig instead of
        those keywords; name: the task's name (letters, digits, _ - .),
        recorded in its pack: a multi-task SavedModel routes requests by it.
    """
    from keras_adapters.loaders.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
    if seed is not None:
      tf_keras.utils.set_random_seed(seed)
    pretrained = load_pretrained(
        vocab_file=vocab_file, do_lower_case=do_lower_case,
        bert_config_file=bert_config_file, **task_inputs.model_source(preset))
    return cls.from_pretrained(pretrained, max_seq_length, seed=seed,
                               **config)

  def call(self, inputs, training=None, mask=None):
    if isinstance(inputs, dict) and "trunk_output" in inputs:
      outputs = self._call_from_trunk(inputs, training)
    else:
      outputs = super().call(inputs, training=training, mask=mask)
    # float32 logits under a mixed policy, for the loss, softmax and metrics
    # (as Model Garden's tasks cast them before their losses).
    return precision.float32_logits(outputs)

  def _call_from_trunk(self, inputs, training):
    """The head over the encoder's upper blocks, from the frozen trunk's
    output (a trunk-cache batch): the layers of the functional graph."""
    pooled = self.encoder(inputs, training=training)["pooled_output"]
    dropout = next(l for l in self.layers
                   if isinstance(l, tf_keras.layers.Dropout))
    return self.classifier(dropout(pooled, training=training),
                           training=training)

  @property
  def encoder(self):
    return compat.classifier_encoder(self)

  @property
  def preprocessor(self):
    return self._preprocessor

  @property
  def labels(self):
    return self.task_config["labels"]

  @property
  def is_regression(self):
    return self.task_config["is_regression"]

  def parameter_report(self):
    return tuning.parameter_report(self, self.encoder)

  def compile_adamw(self, num_train_steps, learning_rate=None,
                    warmup_proportion=0.1, **compile_kwargs):
    """Compiles with the drivers' optimizer, loss and metrics: Model
    Garden's AdamW, linear warmup then decay to 0 over `num_train_steps`,
    at the mode's default rate unless `learning_rate` is given."""
    learning_rate = learning_rate or optimizers.DEFAULT_LEARNING_RATES[
        self.task_config["fine_tune_mode"]]
    if self.is_regression:
      loss, metrics = tf_keras.losses.MeanSquaredError(), []
    else:
      loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
      metrics = ["accuracy"]
    with self.distribute_strategy.scope():
      optimizer = precision.configure_optimizer(optimizers.create_optimizer(
          learning_rate, max(1, int(num_train_steps)), warmup_proportion),
                                                self.dtype_policy)
      self.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                   **compile_kwargs)
    optimizers.create_step_variables(self, tf.zeros(
        [1], tf.float32 if self.is_regression else tf.int32))
    return learning_rate

  def _texts(self, x):
    if self.preprocessor is None:
      raise UserInputError("this classifier has no preprocessor: build it "
                           "with from_preset to pass raw text")
    texts_a, texts_b = task_inputs.split_texts(x)
    task_inputs.check_positions(self.preprocessor.max_seq_length,
                                self.encoder)
    check_max_seq_length(self.preprocessor.max_seq_length,
                         texts_b is not None)
    if self.task_config["is_pair"] is None:
      self.task_config["is_pair"] = texts_b is not None
    elif self.task_config["is_pair"] != (texts_b is not None):
      want = "(texts_a, texts_b)" if self.task_config["is_pair"] else "texts"
      raise UserInputError(f"this classifier takes {want}, as it was "
                           "trained; pass them in that layout")
    return texts_a, texts_b

  def train_batches(self, x, y, batch_size, skip=0, dynamic_padding=False,
                    bucket_by_length=False, group_by_length=False,
                    trunk_cache=None, trunk_cache_dtype="float32"):
    """(dataset, steps_per_epoch): the repeated, shuffled global batches of
    `fit`, positioned `skip` batches in. Full batches only; with
    `bucket_by_length` (True, or the bucket boundaries) each batch holds
    examples of one length bucket, with `group_by_length` examples of
    similar length (keras_adapters/data/bucketing.py). With `trunk_cache`
    (True: in memory; a directory: saved there and reused), the batches
    hold the frozen trunk's outputs instead of token ids
    (keras_adapters/data/trunk_cache.py)."""
    texts_a, texts_b = self._texts(x)
    steps = task_inputs.check_training_size(len(texts_a), y, batch_size)
    labels = task_inputs.encode(y, self.task_config)
    text_batches.check_batching(bucket_by_length, group_by_length,
                                self.distribute_strategy)
    tokenized = features.tokenize(self.preprocessor, texts_a, texts_b)
    states = None
    if trunk_cache:
      states = trunk_cache_lib.trunk_states(
          self, tokenized, trunk_cache_dtype,
          path=None if trunk_cache is True else str(trunk_cache))
      self.train_function = None  # traced again, from the trunk's output
    ds, bucket_steps = text_batches.training_batches(
        tokenized, labels, self.preprocessor, batch_size,
        is_regression=self.is_regression, seed=self.seed,
        dynamic_padding=dynamic_padding, bucket_by_length=bucket_by_length,
        group_by_length=group_by_length, trunk_states=states)
    return (ds.skip(skip) if skip else ds), bucket_steps or steps

  def _eval_batches(self, x, y=None, batch_size=32, pad=True,
                    dynamic_padding=None):
    """(batches, n): with `pad`, full batches (the last one padded with the
    first example, for an even replica split): keep n outputs. Each batch
    is cut to its longest text unless `_pads_dynamically` says no."""
    if isinstance(x, tf.data.Dataset):
      return task_inputs.map_strings(x, self), None
    texts_a, texts_b = self._texts(x)
    labels = None if y is None else task_inputs.encode(y, self.task_config)
    return text_batches.evaluation_batches(
        texts_a, texts_b, labels, self.preprocessor, batch_size,
        is_regression=self.is_regression, pad=pad,
        cut=self._pads_dynamically(dynamic_padding)), len(texts_a)

  def _pads_dynamically(self, dynamic_padding, bucket_by_length=False):
    """`dynamic_padding`, or its default: on, except where shapes must stay
    static (a TPUStrategy, `jit_compile`) or buckets fix them."""
    if dynamic_padding is not None:
      return dynamic_padding
    return not (bucket_by_length or self.jit_compile or isinstance(
        self.distribute_strategy, tf.distribute.TPUStrategy))

  def fit(self, x=None, y=None, batch_size=None, epochs=1, validation_data=None,
          steps_per_epoch=None, callbacks=None, verbose="auto",
          dynamic_padding=None, bucket_by_length=False, group_by_length=False,
          trunk_cache=None, trunk_cache_dtype="float32", **kwargs):
    """`Model.fit` on raw strings (or a dataset of string batches).

    `dynamic_padding` (default: on, except on TPU or with `jit_compile`)
    cuts each batch to its longest text: the same batches as padding to
    max_seq_length, only float rounding differs. `bucket_by_length`: True
    (or bucket boundaries) batches texts of similar length together, each
    batch cut to its bucket: less padding still, a fixed set of shapes.
    `group_by_length`: texts of similar length batched together as
    transformers' Trainer does, each batch cut to its longest text: the least
    padding, but every batch length is a shape (not for TPUs).
    `validation_split` validates on the last fraction of the texts and
    labels (before shuffling), as Keras splits arrays. `trunk_cache` (with
    `leave_out` = blocks 0..k-1): True computes those blocks' outputs once,
    before the first epoch, and trains the upper blocks from them (the
    trunk then runs without dropout); a directory keeps them there for
    later runs; `trunk_cache_dtype` "float16" halves their memory."""
    dynamic_padding = self._pads_dynamically(dynamic_padding,
                                             bucket_by_length)
    if trunk_cache and (self.preprocessor is None or isinstance(
        x, tf.data.Dataset) or task_inputs.holds_ids(x)):
      raise UserInputError("trunk_cache needs the texts as lists or arrays "
                           "(fit(texts, labels, trunk_cache=True)), not a "
                           "dataset or token ids")
    if self.preprocessor is None or task_inputs.holds_ids(x):
      return super().fit(x, y, batch_size=batch_size, epochs=epochs,
                         validation_data=validation_data,
                         steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                         verbose=verbose, **kwargs)
    batch_size = batch_size or 32
    x, y, validation_data = task_inputs.split_validation(
        x, y, validation_data, kwargs.pop("validation_split", 0.0))
    if isinstance(x, tf.data.Dataset):
      data, steps = task_inputs.map_strings(x, self), None
    else:
      batches, steps = self.train_batches(
          x, y, batch_size, dynamic_padding=dynamic_padding,
          bucket_by_length=bucket_by_length, group_by_length=group_by_length,
          trunk_cache=trunk_cache, trunk_cache_dtype=trunk_cache_dtype)
      data = distribute.per_replica_input(lambda: batches)
    steps_per_epoch = steps_per_epoch or steps or task_inputs.count(x)
    if not compat.is_compiled(self):
      self.compile_adamw(steps_per_epoch * epochs)
    if validation_data is not None and not isinstance(
        validation_data, tf.data.Dataset):
      validation_data = self._eval_batches(
          *validation_data, batch_size, pad=False,
          dynamic_padding=dynamic_padding)[0]
    return super().fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                       validation_data=validation_data, callbacks=callbacks,
                       verbose=verbose, **kwargs)

  def predict(self, x, batch_size=None, dynamic_padding=None, **kwargs):
    """Keras' predict, for raw texts too: the model's outputs, logits
    [n, classes] (regression: [n, 1]). `predict_proba` gives probabilities.
    `dynamic_padding` as in `fit` (the same default): only float rounding
    differs."""
    if self.preprocessor is None or task_inputs.holds_ids(x):
      return super().predict(x, batch_size=batch_size, **kwargs)
    batches, n = self._eval_batches(x, batch_size=batch_size or 32,
                                    dynamic_padding=dynamic_padding)
    if n == 0:  # Keras' predict fails on no batches
      return np.zeros((0, self.num_classes), np.float32)
    kwargs.setdefault("verbose", 0)
    outputs = super().predict(batches, **kwargs)
    return outputs if n is None else outputs[:n]

  def predict_proba(self, x, batch_size=None, dynamic_padding=None,
                    **kwargs):
    """Class probabilities [n, classes] (the softmax of `predict`), or
    scores [n] for regression."""
    logits = self.predict(x, batch_size, dynamic_padding, **kwargs)
    if self.is_regression:
      return logits[:, 0]
    return tf.nn.softmax(logits).numpy()

  def predict_labels(self, x, batch_size=None, dynamic_padding=None,
                     **kwargs):
    """The predicted label of each text (class index without labels)."""
    outputs = self.predict_proba(x, batch_size, dynamic_padding, **kwargs)
    if self.is_regression:
      return outputs
    index = outputs.argmax(-1)
    return [self.labels[i] for i in index] if self.labels else index

  def evaluate(self, x=None, y=None, batch_size=None, dynamic_padding=None,
               **kwargs):
    """Keras' evaluate, for raw texts too: the loss and compiled metrics
    (`return_dict=True` names them). Without a `compile`, the loss and
    metrics `fit` would compile. The task's own metrics (F1, Matthews,
    Spearman, ...): `evaluate_metrics`."""
    if not (self.preprocessor is None or task_inputs.holds_ids(x) or
            compat.is_fit_validation(kwargs)):
      x, y = self._eval_batches(x, y, batch_size or 32, pad=False,
                                dynamic_padding=dynamic_padding)[0], None
      batch_size = None
    if not compat.is_compiled(self):
      self.compile_adamw(1)
    return super().evaluate(x, y, batch_size=batch_size, **kwargs)

  def evaluate_metrics(self, x, y, batch_size=None, dynamic_padding=None,
                       **kwargs):
    """{metric: value}: the task's metrics (scikit-learn/SciPy) of raw
    texts and their labels, as run_classifier.py reports them."""
    from keras_adapters.tasks import metrics  # pylint: disable=g-import-not-at-top
    logits = self.predict(x, batch_size, dynamic_padding, **kwargs)
    gold = np.asarray(task_inputs.encode(y, self.task_config))
    predicted = logits[:, 0] if self.is_regression else logits.argmax(-1)
    return metrics.compute_metrics(task_inputs.metric_task(self.task_config),
                                   gold, predicted)

  def save_adapters(self, path):
    """Writes what this task trained, its config and the backbone's
    fingerprint to `path` (.npz)."""
    adapter_pack.save_adapter_pack(path, self, self.encoder, self.task_config)
    return path

  @classmethod
  def load_adapters(cls, path, preset="all-MiniLM-L6-v2", pretrained=None,
                    max_seq_length=None, **load_kwargs):
    """A classifier rebuilt from the pack at `path` on its backbone
    (`preset`, as in `from_preset`, or a loaded `pretrained`), with the
    pack's max_seq_length unless `max_seq_length` is given."""
    config, _ = adapter_pack.read_pack(path)
    settings = task_inputs.settings_from_pack(config)
    max_seq_length = max_seq_length or config.get("max_seq_length", 128)
    if pretrained is None:
      model = cls.from_preset(preset, max_seq_length=max_seq_length,
                              **settings, **load_kwargs)
    else:
      model = cls.from_pretrained(pretrained, max_seq_length, **settings)
    if config.get("is_pair") is not None:
      model.task_config["is_pair"] = config["is_pair"]
    adapter_pack.load_adapter_pack(path, model, model.encoder)
    return model

  def get_config(self):
    """What from_config needs to rebuild this model (the weights come from
    the .keras file): the backbone's architecture, the preprocessor with its
    vocabulary, the task facts and the AdapterConfig."""
    facts = self.task_config
    return dict(
        **({"name": facts["name"]} if facts["name"] else {}),
        encoder=_backbone_config(self.encoder),
        preprocessor=self._preprocessor and
        self._preprocessor.get_config_with_vocabulary(),
        num_classes=facts["num_classes"], labels=facts["labels"],
        regression=facts["is_regression"],
        task_name=facts["task_name"] or "", is_pair=facts["is_pair"],
        dropout_rate=self.dropout_rate, seed=self.seed,
        model_description=facts["model"],
        adapter_config=AdapterConfig.from_dict(facts).to_dict())

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    config = dict(config)
    encoder = networks.BertEncoderV2(**config.pop("encoder"))
    preprocessor = config.pop("preprocessor")
    if preprocessor is not None:
      preprocessor = AdapterTextPreprocessor.from_config(preprocessor)
    is_pair = config.pop("is_pair", None)
    adapter_config = AdapterConfig.from_dict(config.pop("adapter_config"))
    model = cls(build_encoder(encoder), preprocessor,
                adapter_config=adapter_config, **config)
    model.task_config["is_pair"] = is_pair
    return model

  def save(self, filepath, overwrite=True, save_format=None, **kwargs):
    """Keras' save in its `.keras` format (reload with
    tf_keras.models.load_model); other formats are refused at once."""
    if save_format not in (None, "keras") or not str(filepath).endswith(
        ".keras"):
      raise UserInputError(
          f"save({str(filepath)!r}): AdapterTextClassifier saves in Keras' "
          ".keras format only (e.g. clf.save('model.keras')); for TF "
          "Serving use export(export_dir), for the adapters alone "
          "save_adapters(path)")
    return super().save(filepath, overwrite=overwrite, save_format="keras",
                        **kwargs)

  def export(self, export_dir, include_text=True):
    """Writes a TF Serving SavedModel (raw-text `serving_default` and
    token-id `serving_ids`; see docs/serving.md)."""
    from keras_adapters.serving.classifier_server import export_classifier  # pylint: disable=g-import-not-at-top
    c = self.task_config
    if c["is_pair"] is None:
      raise UserInputError("export needs to know whether the task takes one "
                           "text or a pair: fit or evaluate first")
    labels = c["labels"] or [str(i) for i in range(self.num_classes)]
    return export_classifier(
        export_dir, self, self.encoder, preprocessor=self.preprocessor,
        labels=None if c["is_regression"] else labels,
        is_regression=c["is_regression"], is_pair=c["is_pair"],
        task_name=c["task_name"], include_text=include_text)


def _backbone_config(encoder):
  """The keyword arguments of the BertEncoderV2 under `encoder` (adapters
  are the AdapterConfig's), as JSON."""
  config = backbone_config(encoder)
  if not isinstance(config["inner_activation"], str):
    raise UserInputError(
        "this backbone's activation is a Python function, which a .keras "
        "file cannot hold; use save_adapters(path) or export(export_dir)")
  return json.loads(json.dumps(config, default=dict))


def build_classifier(pretrained_encoder, num_classes, fine_tune_mode="adapter",
                     adapter_size=64, adapter_init_scale=1e-3, top_k_layers=1,
                     dropout_rate=0.1, adapter_type="houlsby",
                     fused_adapter_sizes=(), adapter_config=None):
  """Returns (model, encoder): an `AdapterTextClassifier` without a
  preprocessor (it takes token ids), i.e. Model Garden's `BertClassifier`
  (pooled output, dropout, dense; `num_classes=1` for regression) with the
  mode's variables set trainable. Pass the *pretrained* encoder: adapters
  are added here, for `fine_tune_mode="adapter"`. An AdapterConfig
  `adapter_config` replaces the adapter keywords."""
  model = AdapterTextClassifier(
      pretrained_encoder, None, num_classes=num_classes,
      regression=num_classes == 1, fine_tune_mode=fine_tune_mode,
      adapter_size=adapter_size, adapter_init_scale=adapter_init_scale,
      top_k_layers=top_k_layers, dropout_rate=dropout_rate,
      adapter_type=adapter_type, fused_adapter_sizes=fused_adapter_sizes,
      adapter_config=adapter_config)
  return model, model.encoder
