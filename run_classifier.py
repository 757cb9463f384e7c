"""Adapter tuning of BERT on GLUE and other sentence(-pair) tasks.

Mirrors the flags of Google BERT's run_classifier.py. Example:

  python run_classifier.py --task_name=MRPC --do_train --do_eval \
    --data_dir=../shared/data/glue_data/MRPC --output_dir=/tmp/mrpc
"""

import os

# TF's C++ INFO/WARNING lines would bury the one-line errors; TF_CPP_MIN_LOG_LEVEL=0 brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from keras_adapters import driver_flags
from keras_adapters.errors import UserInputError

driver_flags.define_common_flags("Checkpoints, logs, results, adapter pack.")
flags.DEFINE_string("task_name", None, "GLUE task (cola, sst-2, mrpc, sts-b, "
                    "qqp, mnli, mnli-mm, qnli, rte, wnli) or 'generic'.")
flags.DEFINE_string("data_dir", None, "Directory with train/dev/test files.")
flags.DEFINE_integer("max_seq_length", 128, "Wordpieces per example, padded.")
flags.DEFINE_bool("dynamic_padding", False, "Pad each training batch only "
                  "to its longest example (multiple of 8), not to "
                  "max_seq_length: same batches, faster on CPU/GPU for short "
                  "texts; numbers differ by float rounding. Not with TPUs.")
flags.DEFINE_bool("do_eval", False, "Evaluate on dev; writes eval_results.txt.")
flags.DEFINE_integer("eval_every_epochs", 0, "With --do_train and --do_eval: "
                     "also evaluate dev after every N-th epoch, one JSON line "
                     "each in output_dir/dev_curve.jsonl (0: off). Training "
                     "is unchanged.")
flags.DEFINE_bool("do_predict", False, "Predict test; writes test_results.tsv.")
flags.DEFINE_integer("eval_batch_size", 32, "Evaluation batch size.")
flags.DEFINE_integer("predict_batch_size", 32, "Prediction batch size.")
flags.DEFINE_string("adapter_pack", None, "Without --do_train: evaluate/"
                    "predict with this pack (adapter_pack.npz of an earlier "
                    "run) on the backbone instead of output_dir's checkpoint; "
                    "its fine_tune_mode/adapter_size/top_k_layers are used.")
flags.DEFINE_string("export_dir", None, "Also export the (trained or "
                    "pack-loaded) classifier as a TF Serving SavedModel here "
                    "(see docs/serving.md).")
flags.DEFINE_string("text_a_column", "0", "generic task: column (name/index).")
flags.DEFINE_string("text_b_column", None, "generic task: second text column.")
flags.DEFINE_string("label_column", "1", "generic task: label column.")
flags.DEFINE_list("label_list", None, "generic task: labels (else inferred).")
flags.DEFINE_bool("regression", False, "generic task: float labels.")
flags.DEFINE_string("tfds_name", None, "Read the task from tensorflow-"
                    "datasets instead of --data_dir, e.g. glue/mrpc (implies "
                    "--task_name). Never downloads: prepare it offline with "
                    "python -m keras_adapters.data.tfds_glue.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data_dir holding the "
                    "prepared --tfds_name (local or gs://).")
FLAGS = flags.FLAGS

# File names the GLUE leaderboard expects in a submission zip.
GLUE_SUBMISSION_NAMES = {
    "cola": "CoLA", "sst-2": "SST-2", "mrpc": "MRPC", "sts-b": "STS-B",
    "qqp": "QQP", "mnli": "MNLI-m", "mnli-mm": "MNLI-mm", "qnli": "QNLI",
    "rte": "RTE", "wnli": "WNLI"}


def _column(value):
  return int(value) if value is not None and value.isdigit() else value


def _processor():
  from keras_adapters.data import glue
  if FLAGS.tfds_name:
    from keras_adapters.data import tfds_glue
    task = tfds_glue.config_of(FLAGS.tfds_name)[1].task
    if FLAGS.task_name and glue.canonical_task_name(FLAGS.task_name) != task:
      raise UserInputError(f"--task_name={FLAGS.task_name} does not match "
                           f"--tfds_name={FLAGS.tfds_name}; drop --task_name")
    FLAGS.task_name = task
  if glue.canonical_task_name(FLAGS.task_name) != "generic":
    return glue.get_processor(FLAGS.task_name)
  return glue.get_processor(
      FLAGS.task_name, text_a_column=_column(FLAGS.text_a_column),
      text_b_column=_column(FLAGS.text_b_column),
      label_column=_column(FLAGS.label_column), label_list=FLAGS.label_list,
      is_regression=FLAGS.regression)


def _check_flags():
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise UserInputError("nothing to do: pass --do_train, --do_eval and/or "
                         "--do_predict")
  required = ("output_dir",) if FLAGS.tfds_name else (
      "task_name", "data_dir", "output_dir")
  for name in required:
    if not getattr(FLAGS, name):
      raise UserInputError(f"--{name} is required")
  if FLAGS.tfds_name and FLAGS.data_dir:
    raise UserInputError("give --data_dir or --tfds_name, not both")
  if not FLAGS.tfds_name and not os.path.isdir(FLAGS.data_dir):
    raise UserInputError(f"--data_dir {FLAGS.data_dir} is not a directory")
  if FLAGS.num_train_epochs <= 0 or FLAGS.train_batch_size < 1:
    raise UserInputError("--num_train_epochs and --train_batch_size must be "
                         "positive")
  if FLAGS.eval_every_epochs < 0 or (FLAGS.eval_every_epochs and not (
      FLAGS.do_train and FLAGS.do_eval)):
    raise UserInputError(f"--eval_every_epochs={FLAGS.eval_every_epochs}: "
                         "give N >= 1 with --do_train and --do_eval, or 0")
  if FLAGS.dynamic_padding and (FLAGS.use_tpu or
                                FLAGS.distribution_strategy == "tpu"):
    raise UserInputError("--dynamic_padding makes batch shapes vary, which "
                         "TPUs cannot run; drop it for TPU training")
  driver_flags.check_common_flags()


def _use_pack_config(labels):
  """Builds the model as the pack's training run did."""
  from keras_adapters.adapter_pack import read_pack
  if FLAGS.do_train:
    raise UserInputError("--adapter_pack is for evaluation/prediction; drop "
                         "it or --do_train")
  config, _ = read_pack(FLAGS.adapter_pack)
  if config.get("labels") != labels:
    raise UserInputError(f"{FLAGS.adapter_pack} was trained with labels "
                         f"{config.get('labels')}, task {FLAGS.task_name} has "
                         f"{labels}; use the pack of this task")
  for name in ("fine_tune_mode", "adapter_size", "top_k_layers"):
    if name in config:
      setattr(FLAGS, name, config[name])


def _dev_metrics(predict, processor, examples):
  """Dev metrics of the model behind `predict(split, batch_size)`."""
  import numpy as np
  from keras_adapters import metrics
  labels = processor.labels
  outputs = predict("dev", FLAGS.eval_batch_size)
  gold = [e.label for e in examples["dev"]]
  if processor.is_regression:
    gold, predicted = np.array(gold, dtype=float), outputs
  else:
    gold = np.array([labels.index(g) for g in gold])
    predicted = outputs.argmax(-1)
  return metrics.compute_metrics(processor, gold, predicted)


def _results_text(metrics, step):
  lines = [f"eval_{k} = {v:.6f}" for k, v in sorted(metrics.items())]
  return "\n".join(lines + [f"global_step = {step}"]) + "\n"


def run():
  _check_flags()
  processor = _processor()
  # Read (and so validate) every file needed before any slow work starts.
  read = processor.get_examples
  if FLAGS.tfds_name:
    from keras_adapters.data import tfds_glue
    read = lambda _, split: tfds_glue.read_examples(  # pylint: disable=g-long-lambda
        FLAGS.tfds_name, FLAGS.tfds_data_dir, split)
  examples = {}
  if FLAGS.do_train:
    examples["train"] = read(FLAGS.data_dir, "train")
  if FLAGS.do_eval:
    examples["dev"] = read(FLAGS.data_dir, "dev")
  if FLAGS.do_predict:
    examples["test"] = read(FLAGS.data_dir, "test")
  labels = processor.labels
  if FLAGS.adapter_pack:
    _use_pack_config(labels)

  import tensorflow as tf
  import tf_keras
  from keras_adapters import adapter_pack, distribute, training
  from keras_adapters import tuning
  from keras_adapters.classifier import build_classifier
  from keras_adapters.data.features import make_dataset
  from keras_adapters.data.features import steps_per_epoch as count_steps

  tf_keras.utils.set_random_seed(FLAGS.seed)
  strategy = driver_flags.strategy_from_flags()
  for flag in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
    distribute.check_batch_size(strategy, flag, getattr(FLAGS, flag))
  chief = distribute.is_chief(strategy)
  with strategy.scope():
    pretrained = driver_flags.load_pretrained_from_flags()
    num_classes = 1 if processor.is_regression else len(labels)
    model, encoder = build_classifier(
        pretrained.encoder, num_classes, FLAGS.fine_tune_mode,
        FLAGS.adapter_size, FLAGS.adapter_init_scale, FLAGS.top_k_layers)
    steps_per_epoch = count_steps(len(examples.get("train", [None])),
                                  FLAGS.train_batch_size, drop_remainder=True)
    if FLAGS.do_train and steps_per_epoch == 0:
      raise UserInputError(f"{len(examples['train'])} training examples are "
                           "fewer than one batch; lower --train_batch_size")
    total_steps = max(1, int(steps_per_epoch * FLAGS.num_train_epochs))
    learning_rate = driver_flags.learning_rate()
    if processor.is_regression:
      loss, train_metrics = tf_keras.losses.MeanSquaredError(), []
    else:
      loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
      train_metrics = ["accuracy"]
    model.compile(optimizer=training.create_optimizer(
        learning_rate, total_steps, FLAGS.warmup_proportion),
                  loss=loss, metrics=train_metrics,
                  jit_compile=FLAGS.jit_compile)
  print(f"Model: {pretrained.description}; fine_tune_mode="
        f"{FLAGS.fine_tune_mode}; learning_rate={learning_rate}; "
        f"jit_compile={bool(model.jit_compile)}")
  print(tuning.format_parameter_report(tuning.parameter_report(model,
                                                               encoder)))

  def dataset(split, batch_size, training_=False, skip=0):
    """Training: repeated full batches. Else full batches padded at the end
    (static shapes; even replica split); drop outputs past the examples."""
    ds = make_dataset(
        examples[split], vocab_file=pretrained.vocab_file,
        do_lower_case=pretrained.do_lower_case,
        max_seq_length=FLAGS.max_seq_length, label_list=labels,
        is_regression=processor.is_regression, batch_size=batch_size,
        is_training=training_, seed=FLAGS.seed, drop_remainder=training_,
        repeat=training_, dynamic_padding=training_ and FLAGS.dynamic_padding)
    if not training_:
      return distribute.padded_batches(ds, len(examples[split]), batch_size)
    return ds.skip(skip) if skip else ds

  def predict(split, batch_size):
    outputs = model.predict(dataset(split, batch_size), verbose=0)
    outputs = outputs[:len(examples[split])]  # drop the padding
    return outputs[:, 0] if processor.is_regression else outputs

  step = 0
  if FLAGS.do_train:
    curve = []
    if FLAGS.eval_every_epochs:
      curve.append(training.DevCurve(
          lambda: _dev_metrics(predict, processor, examples), steps_per_epoch,
          FLAGS.eval_every_epochs,
          os.path.join(FLAGS.output_dir, "dev_curve.jsonl"), write=chief))
    step = training.fit_resumable(
        model, lambda skip: dataset("train", FLAGS.train_batch_size, True,
                                    skip),
        steps_per_epoch, total_steps, FLAGS.output_dir,
        min(FLAGS.save_checkpoints_steps, total_steps), callbacks=curve)
    pack_path = os.path.join(FLAGS.output_dir, "adapter_pack.npz")
    if chief:  # multi-worker: only the chief writes results
      adapter_pack.save_adapter_pack(pack_path, model, encoder, dict(
          task_name=processor.name, labels=labels,
          is_regression=processor.is_regression,
          fine_tune_mode=FLAGS.fine_tune_mode,
          adapter_size=FLAGS.adapter_size, top_k_layers=FLAGS.top_k_layers,
          max_seq_length=FLAGS.max_seq_length, model=pretrained.description))
      print(f"Saved the trained variables to {pack_path}")
  elif FLAGS.adapter_pack:
    adapter_pack.load_adapter_pack(FLAGS.adapter_pack, model, encoder)
  else:
    step = training.restore_trained(model, FLAGS.output_dir)

  if FLAGS.export_dir:
    from keras_adapters.serving import export_classifier
    # Every worker saves (collectively); non-chief ones into their own dir.
    export_dir = FLAGS.export_dir if chief else os.path.join(
        distribute.worker_dir(strategy, FLAGS.output_dir), "export")
    export_classifier(
        export_dir, model, encoder, vocab_file=pretrained.vocab_file,
        do_lower_case=pretrained.do_lower_case, labels=labels,
        is_regression=processor.is_regression, is_pair=processor.is_pair,
        max_seq_length=FLAGS.max_seq_length, task_name=processor.name)
    distribute.remove_worker_dir(strategy, FLAGS.output_dir)
    if chief:
      print(f"Exported a SavedModel for TF Serving to {FLAGS.export_dir}")

  if FLAGS.do_eval:
    result = _dev_metrics(predict, processor, examples)
    path = os.path.join(FLAGS.output_dir, "eval_results.txt")
    if chief:
      training.write_atomically(path, _results_text(result, step))
      print(f"***** Eval results ({len(examples['dev'])} dev examples) -> "
            f"{path}")
      print(_results_text(result, step), end="")

  if FLAGS.do_predict:
    outputs = predict("test", FLAGS.predict_batch_size)
    if not chief:
      return
    if processor.is_regression:
      rows = [f"{x:.6f}" for x in outputs]
      submission = [f"{x:.3f}" for x in outputs]
    else:
      probabilities = tf.nn.softmax(outputs).numpy()
      rows = ["\t".join(f"{p:.6f}" for p in row) for row in probabilities]
      submission = [labels[i] for i in probabilities.argmax(-1)]
    training.write_atomically(
        os.path.join(FLAGS.output_dir, "test_results.tsv"),
        "\n".join(rows) + "\n")
    glue_file = os.path.join(
        FLAGS.output_dir, GLUE_SUBMISSION_NAMES.get(processor.name, "generic")
        + ".tsv")
    training.write_atomically(glue_file, "index\tprediction\n" + "".join(
        f"{i}\t{p}\n" for i, p in enumerate(submission)))
    print(f"Wrote test_results.tsv and {glue_file}")


main = driver_flags.main_with_clean_errors(run, "run_classifier.py")


if __name__ == "__main__":
  app.run(main)
