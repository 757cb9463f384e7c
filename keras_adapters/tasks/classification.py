"""Sentence(-pair) classification and regression (GLUE or any CSV/TSV) as a
task of the experiment runner: data, model, evaluation and output files."""

import dataclasses
import os
from typing import Optional

from keras_adapters.data import glue
from keras_adapters.data.limits import check_max_seq_length
from keras_adapters.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class DataSource:
  """Where the examples come from: GLUE/CSV files or a prepared TFDS set."""
  task_name: Optional[str] = None
  data_dir: Optional[str] = None
  tfds_name: Optional[str] = None
  tfds_data_dir: Optional[str] = None
  generic_options: Optional[dict] = None  # glue.GenericProcessor's keywords

  def processor(self):
    task_name = self.task_name
    if self.tfds_name:
      from keras_adapters.data import tfds_glue  # pylint: disable=g-import-not-at-top
      tfds_task = tfds_glue.config_of(self.tfds_name)[1].task
      if task_name and glue.canonical_task_name(task_name) != tfds_task:
        raise UserInputError(f"--task_name={task_name} does not match "
                             f"--tfds_name={self.tfds_name}; drop --task_name")
      task_name = tfds_task
    if glue.canonical_task_name(task_name) == "generic":
      return glue.get_processor(task_name, **(self.generic_options or {}))
    return glue.get_processor(task_name)

  def read(self, processor, split):
    if self.tfds_name:
      from keras_adapters.data import tfds_glue  # pylint: disable=g-import-not-at-top
      return tfds_glue.read_examples(self.tfds_name, self.tfds_data_dir, split)
    return processor.get_examples(self.data_dir, split)


def _texts(examples):
  """`AdapterTextClassifier` input: texts, or (texts_a, texts_b)."""
  texts_a = [e.text_a for e in examples]
  if examples[0].text_b is None:
    return texts_a
  return texts_a, [e.text_b for e in examples]


class ClassificationTask:
  """run_classifier.py's task: reads every split it needs up front (so bad
  data fails before any slow work), then builds an `AdapterTextClassifier`
  and writes eval_results.txt, test_results.tsv and the GLUE submission."""

  def __init__(self, source, splits, *, max_seq_length=128,
               dynamic_padding=False, bucket_by_length=False,
               group_by_length=False, eval_every_epochs=0, eval_batch_size=32,
               predict_batch_size=32, report_train_tokens=False, name=None,
               trunk_cache_dtype=None):
    self.processor = source.processor()
    self.name = name  # the task's name in its pack (multi-task serving)
    self.examples = {split: source.read(self.processor, split)
                     for split in splits}
    self.labels = self.processor.labels  # inferred from train if generic
    self.max_seq_length = check_max_seq_length(
        max_seq_length, self.processor.is_pair)
    self.dynamic_padding = dynamic_padding
    self.bucket_by_length = bucket_by_length  # False, True or boundaries
    self.group_by_length = group_by_length
    self.eval_every_epochs = eval_every_epochs
    self.report_train_tokens = report_train_tokens
    self.batch_size = dict(dev=eval_batch_size, test=predict_batch_size)
    self.trunk_cache_dtype = trunk_cache_dtype  # None: no trunk cache
    self._stream = None

  def check_pack(self, config, path):
    if config.get("labels") != self.labels:
      raise UserInputError(
          f"{path} was trained with labels {config.get('labels')}, task "
          f"{self.processor.submission_name} has {self.labels}; use the pack "
          "of this task")

  def prepare(self, pretrained, settings):
    del pretrained, settings

  def build_model(self, pretrained, settings):
    from keras_adapters.models.text_classifier import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
    model = AdapterTextClassifier.from_pretrained(
        pretrained, self.max_seq_length, task_name=self.processor.name,
        labels=None if self.processor.is_regression else self.labels,
        regression=self.processor.is_regression, seed=settings.seed,
        adapter_config=settings.adapter_config(),
        fuse_packs=settings.fuse_packs,
        **({"name": self.name} if self.name else {}))
    model.task_config["is_pair"] = self.processor.is_pair
    return model, model.encoder

  def compile(self, model, settings, total_steps):
    model.compile_adamw(total_steps, settings.learning_rate,
                        settings.warmup_proportion,
                        jit_compile=settings.jit_compile)

  def num_train_examples(self):
    return len(self.examples.get("train", []))

  def num_train_batches(self, model, settings):
    if not self.bucket_by_length:
      return self.num_train_examples() // settings.train_batch_size
    return self._train_stream(model, settings)[1]  # counts the lengths

  def train_batches(self, model, settings, skip):
    ds = self._train_stream(model, settings)[0]
    return ds.skip(skip) if skip else ds

  def _train_stream(self, model, settings):
    """(batches from the start, steps per epoch), built once: the bucket
    count tokenizes every training text."""
    if self._stream is None:
      train = self.examples["train"]
      self._stream = model.train_batches(
          _texts(train), [e.label for e in train], settings.train_batch_size,
          0, self.dynamic_padding, self.bucket_by_length,
          self.group_by_length, trunk_cache=self._trunk_cache_dir(
              model, settings), trunk_cache_dtype=self.trunk_cache_dtype)
    return self._stream

  def _trunk_cache_dir(self, model, settings):
    """output_dir/trunk_cache (a worker's own directory on other workers
    than the chief), or None without --trunk_cache."""
    if not self.trunk_cache_dtype:
      return None
    from keras_adapters.training import distribute  # pylint: disable=g-import-not-at-top
    return os.path.join(distribute.worker_dir(model.distribute_strategy,
                                              settings.output_dir),
                        "trunk_cache")

  def train_callbacks(self, model, settings, steps_per_epoch, chief):
    """The dev curve (dev_curve.jsonl) with --eval_every_epochs; the
    tokens trained on with --report_train_tokens."""
    from keras_adapters.training import callbacks  # pylint: disable=g-import-not-at-top
    found = []
    if self.report_train_tokens:
      found.append(callbacks.TrainTokens(
          lambda skip: self.train_batches(model, settings, skip)))
    if self.eval_every_epochs:
      found.append(callbacks.DevCurve(
          lambda: self._dev_metrics(model), steps_per_epoch,
          self.eval_every_epochs,
          os.path.join(settings.output_dir, "dev_curve.jsonl"), write=chief))
    return found

  def pack_config(self, model, settings, pretrained):
    del settings, pretrained  # the model's task_config has it all
    return model.task_config

  def after_training(self, model, encoder, settings, step, chief, strategy):
    """Export, then dev metrics and test predictions, as the flags ask."""
    del encoder
    if settings.export_dir:
      self._export(model, settings, chief, strategy)
    if "dev" in self.examples:
      self._evaluate(model, settings.output_dir, step, chief)
    if "test" in self.examples:
      self._predict(model, settings.output_dir, chief)

  def _export(self, model, settings, chief, strategy):
    from keras_adapters.training import distribute  # pylint: disable=g-import-not-at-top
    # Every worker saves (collectively); non-chief ones into their own dir.
    export_dir = settings.export_dir if chief else os.path.join(
        distribute.worker_dir(strategy, settings.output_dir), "export")
    model.export(export_dir)
    distribute.remove_worker_dir(strategy, settings.output_dir)
    if chief:
      print(f"Exported a SavedModel for TF Serving to {settings.export_dir}")

  def _dev_metrics(self, model):
    dev = self.examples["dev"]
    # Static padding, as Google BERT's drivers evaluate (and on TPU).
    return model.evaluate_metrics(_texts(dev), [e.label for e in dev],
                          self.batch_size["dev"], dynamic_padding=False)

  def _evaluate(self, model, output_dir, step, chief):
    from keras_adapters.saving import atomic  # pylint: disable=g-import-not-at-top
    dev = self.examples["dev"]
    result = self._dev_metrics(model)
    lines = [f"eval_{k} = {v:.6f}" for k, v in sorted(result.items())]
    text = "\n".join(lines + [f"global_step = {step}"]) + "\n"
    path = os.path.join(output_dir, "eval_results.txt")
    if chief:
      atomic.write_atomically(path, text)
      print(f"***** Eval results ({len(dev)} dev examples) -> {path}")
      print(text, end="")

  def _predict(self, model, output_dir, chief):
    from keras_adapters.saving import atomic  # pylint: disable=g-import-not-at-top
    outputs = model.predict_proba(_texts(self.examples["test"]),
                            self.batch_size["test"], dynamic_padding=False)
    if not chief:
      return
    if self.processor.is_regression:
      rows = [f"{x:.6f}" for x in outputs]
      submission = [f"{x:.3f}" for x in outputs]
    else:
      rows = ["\t".join(f"{p:.6f}" for p in row) for row in outputs]
      submission = [self.labels[i] for i in outputs.argmax(-1)]
    atomic.write_atomically(os.path.join(output_dir, "test_results.tsv"),
                              "\n".join(rows) + "\n")
    glue_file = os.path.join(output_dir,
                             self.processor.submission_name + ".tsv")
    atomic.write_atomically(glue_file, "index\tprediction\n" + "".join(
        f"{i}\t{p}\n" for i, p in enumerate(submission)))
    print(f"Wrote test_results.tsv and {glue_file}")
