"""Adapter tuning of BERT on GLUE and other sentence(-pair) tasks.

Mirrors the flags of Google BERT's run_classifier.py. Example:

  keras-adapters-classifier --task_name=MRPC --do_train --do_eval \
    --data_dir=../shared/data/glue_data/MRPC --output_dir=/tmp/mrpc
"""

import os

# TF's C++ log lines would bury the output and the one-line errors (on CPU,
# its cuInit probe logs an ERROR); TF_CPP_MIN_LOG_LEVEL=0 brings them back.
from keras_adapters.cli.tf_logs import quiet_tf_logs

quiet_tf_logs()

from absl import flags

from keras_adapters.saving import adapter_pack
from keras_adapters.cli import driver_flags
from keras_adapters.config import AdapterConfig
from keras_adapters.config import check_task_name
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
flags.DEFINE_bool("trunk_cache", False, "With --leave_out=0,...,k-1 (blocks "
                  "0..k-1 without adapters): compute those blocks' outputs "
                  "once, before training, into output_dir/trunk_cache "
                  "(reused on resume, rebuilt when its inputs change), and "
                  "train blocks k.. from them every epoch. The trunk then "
                  "runs without dropout. Prints the cache's size first; "
                  "refuses one that does not fit in memory.")
flags.DEFINE_enum("trunk_cache_dtype", "float32", ["float32", "float16"],
                  "Storage of the --trunk_cache (float16: half the memory; "
                  "the upper blocks still compute in float32).")
flags.DEFINE_bool("do_eval", False, "Evaluate on dev; writes eval_results.txt.")
flags.DEFINE_integer("eval_every_epochs", 0, "With --do_train and --do_eval: "
                     "also evaluate dev after every N-th epoch, one JSON line "
                     "each in output_dir/dev_curve.jsonl (0: off). Training "
                     "is unchanged.")
flags.DEFINE_bool("report_train_tokens", False, "With --do_train: after "
                  "training, print each epoch's time and the non-pad "
                  "wordpieces it trained on (counted untimed on a fresh copy "
                  "of the same seeded batches): useful tokens/s.")
flags.DEFINE_bool("do_predict", False, "Predict test; writes test_results.tsv.")
flags.DEFINE_integer("eval_batch_size", 32, "Evaluation batch size.")
flags.DEFINE_integer("predict_batch_size", 32, "Prediction batch size.")
flags.DEFINE_string("adapter_pack", None, "Without --do_train: evaluate/"
                    "predict with this pack (adapter_pack.npz of an earlier "
                    "run) on the backbone instead of output_dir's checkpoint; "
                    "its fine_tune_mode/adapter_type/adapter_size/top_k_layers are used.")
flags.DEFINE_list("fuse_packs", None, "With --fine_tune_mode=fusion: train "
                  "an AdapterFusion (Pfeiffer et al., 2021) of these adapter "
                  "packs (two or more, of one --adapter_type, which they "
                  "set): their adapters stay frozen; the fusion, LayerNorms "
                  "and head train (default rate 5e-5).")
flags.DEFINE_string("export_dir", None, "Also export the (trained or "
                    "pack-loaded) classifier as a TF Serving SavedModel here "
                    "(see docs/serving.md).")
flags.DEFINE_string("custom_task_name", None, "The task's name in its "
                    "adapter pack, by which a multi-task SavedModel routes "
                    "requests (default: the GLUE task's; a --task_name="
                    "generic task has none until named).")
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


def _column(value):
  return int(value) if value is not None and value.isdigit() else value


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
  if FLAGS.custom_task_name is not None:
    check_task_name(FLAGS.custom_task_name)
  _check_trunk_cache_flags()
  _check_fusion_flags()
  driver_flags.check_batching_flags(FLAGS.dynamic_padding)
  driver_flags.check_common_flags()


def _check_trunk_cache_flags():
  if not FLAGS.trunk_cache:
    return
  config = AdapterConfig(fine_tune_mode=FLAGS.fine_tune_mode,
                         leave_out=FLAGS.leave_out)
  if not FLAGS.do_train or config.fine_tune_mode != "adapter" or (
      not config.trunk_depth):
    raise UserInputError(
        "--trunk_cache needs --do_train, --fine_tune_mode=adapter and the "
        "lowest blocks left out (e.g. --leave_out=0,1,2)")


def _check_fusion_flags():
  fusion = FLAGS.fine_tune_mode == "fusion"
  if fusion and FLAGS.do_train and not FLAGS.fuse_packs:
    raise UserInputError("--fine_tune_mode=fusion needs --fuse_packs=PACK,"
                         "PACK,... (the adapter packs to fuse)")
  if FLAGS.fuse_packs and not (fusion and FLAGS.do_train):
    raise UserInputError("--fuse_packs trains a fusion: add --do_train "
                         "--fine_tune_mode=fusion (evaluate a trained one "
                         "with --adapter_pack)")
  if FLAGS.fuse_packs:  # readable adapter packs of one type, before TF loads
    adapter_pack.fusion_settings(FLAGS.fuse_packs)


def _task():
  """The task, with every split the flags ask for read (and so checked)."""
  from keras_adapters.tasks.classification import ClassificationTask  # pylint: disable=g-import-not-at-top
  from keras_adapters.tasks.classification import DataSource  # pylint: disable=g-import-not-at-top
  generic = dict(
      text_a_column=_column(FLAGS.text_a_column),
      text_b_column=_column(FLAGS.text_b_column),
      label_column=_column(FLAGS.label_column), label_list=FLAGS.label_list,
      is_regression=FLAGS.regression)
  source = DataSource(FLAGS.task_name, FLAGS.data_dir, FLAGS.tfds_name,
                      FLAGS.tfds_data_dir, generic)
  splits = [s for s, wanted in (("train", FLAGS.do_train),
                                ("dev", FLAGS.do_eval),
                                ("test", FLAGS.do_predict)) if wanted]
  return ClassificationTask(
      source, splits, max_seq_length=FLAGS.max_seq_length,
      dynamic_padding=FLAGS.dynamic_padding,
      bucket_by_length=driver_flags.bucket_boundaries_from_flags(),
      group_by_length=FLAGS.group_by_length,
      eval_every_epochs=FLAGS.eval_every_epochs,
      report_train_tokens=FLAGS.report_train_tokens,
      eval_batch_size=FLAGS.eval_batch_size,
      predict_batch_size=FLAGS.predict_batch_size,
      name=FLAGS.custom_task_name,
      trunk_cache_dtype=FLAGS.trunk_cache_dtype if FLAGS.trunk_cache else None)


def run():
  from keras_adapters.training import experiment  # pylint: disable=g-import-not-at-top
  _check_flags()
  task = _task()
  if FLAGS.do_train and task.num_train_examples() < FLAGS.train_batch_size:
    raise experiment.fewer_than_a_batch_error(  # before TF loads
        task.num_train_examples())
  settings = experiment.Settings.from_flags(FLAGS)
  if settings.adapter_pack:
    settings = experiment.with_pack_settings(settings, task.check_pack)
  if settings.fuse_packs:
    settings = experiment.with_fusion_settings(settings)
  experiment.run(task, settings, driver_flags.load_pretrained_from_flags,
                 {f: getattr(FLAGS, f) for f in (
                     "train_batch_size", "eval_batch_size",
                     "predict_batch_size")})


main = driver_flags.main_with_clean_errors(run)


# The `keras-adapters-classifier` command (and `python run_classifier.py` at the repository root).
entry_point = driver_flags.entry_point_of(main, __name__)


if __name__ == "__main__":
  entry_point()
