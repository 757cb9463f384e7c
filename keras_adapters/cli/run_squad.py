"""Adapter tuning of BERT for extractive question answering (SQuAD).

Mirrors the flags and behaviour of Google BERT's run_squad.py: doc_stride
windows over long contexts, a start/end span head, n-best answer extraction,
predictions.json + nbest_predictions.json (+ null_odds.json for SQuAD 2.0).
When the predict file has gold answers, --do_predict also scores the
predictions as the official evaluation script does (eval_results.txt).

Only SQuAD's dev-v1.1.json is available here: split it by article first
(see keras_adapters/squad/split.py), e.g.

  python -m keras_adapters.squad.split --input ../shared/data/squad/dev-v1.1.json \
    --train_out runs/squad/train.json --eval_out runs/squad/eval.json \
    --eval_articles 8 --seed 0
  keras-adapters-squad --do_train --do_predict \
    --train_file runs/squad/train.json --predict_file runs/squad/eval.json \
    --max_seq_length 384 --doc_stride 128 --output_dir runs/squad/adapter
"""

# TF's C++ log lines would bury the output and the one-line errors (on CPU,
# its cuInit probe logs an ERROR); TF_CPP_MIN_LOG_LEVEL=0 brings them back.
from keras_adapters.cli.tf_logs import quiet_tf_logs

quiet_tf_logs()

from absl import flags

from keras_adapters.cli import driver_flags
from keras_adapters.errors import UserInputError

driver_flags.define_common_flags("Checkpoints, logs, predictions.json, "
                                 "nbest_predictions.json, eval_results.txt, "
                                 "adapter pack.")
flags.DEFINE_string("train_file", None, "SQuAD JSON for training.")
flags.DEFINE_string("predict_file", None, "SQuAD JSON to predict (and, if it "
                    "has answers, evaluate).")
flags.DEFINE_integer("max_seq_length", 384, "Wordpieces per window (question "
                     "+ context piece + 3 special tokens), padded.")
flags.DEFINE_integer("doc_stride", 128, "Stride between context windows.")
flags.DEFINE_integer("max_query_length", 64, "Question wordpieces kept.")
flags.DEFINE_bool("do_predict", False, "Predict (and evaluate) "
                  "--predict_file.")
flags.DEFINE_integer("predict_batch_size", 8, "Prediction batch size.")
flags.DEFINE_integer("n_best_size", 20, "Candidate spans kept per question "
                     "(nbest_predictions.json).")
flags.DEFINE_integer("max_answer_length", 30, "Longest answer, wordpieces.")
flags.DEFINE_bool("version_2_with_negative", False, "SQuAD 2.0: questions "
                  "may have no answer.")
flags.DEFINE_float("null_score_diff_threshold", 0.0, "SQuAD 2.0: predict no "
                   "answer when null score - best span score > this.")
flags.DEFINE_string("adapter_pack", None, "Without --do_train: predict with "
                    "this pack (adapter_pack.npz of an earlier SQuAD run) on "
                    "the backbone instead of output_dir's checkpoint; its "
                    "fine_tune_mode/adapter_type/adapter_size/top_k_layers are used.")
FLAGS = flags.FLAGS


def _check_flags():
  from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
  if not (FLAGS.do_train or FLAGS.do_predict):
    raise UserInputError("nothing to do: pass --do_train and/or --do_predict")
  if not FLAGS.output_dir:
    raise UserInputError("--output_dir is required")
  if FLAGS.do_train and not FLAGS.train_file:
    raise UserInputError("--do_train needs --train_file")
  if FLAGS.do_predict and not FLAGS.predict_file:
    raise UserInputError("--do_predict needs --predict_file")
  if FLAGS.num_train_epochs <= 0 or FLAGS.train_batch_size < 1 or (
      FLAGS.predict_batch_size < 1):
    raise UserInputError("--num_train_epochs, --train_batch_size and "
                         "--predict_batch_size must be positive")
  if FLAGS.n_best_size < 1 or FLAGS.max_answer_length < 1:
    raise UserInputError("--n_best_size and --max_answer_length must be >= 1")
  data.check_window_flags(FLAGS.max_seq_length, FLAGS.doc_stride,
                          FLAGS.max_query_length)
  driver_flags.check_batching_flags()
  driver_flags.check_common_flags()


def run():
  from keras_adapters.tasks.squad import SquadOptions  # pylint: disable=g-import-not-at-top
  from keras_adapters.tasks.squad import SquadTask  # pylint: disable=g-import-not-at-top
  _check_flags()
  options = SquadOptions(FLAGS, driver_flags.bucket_boundaries_from_flags())
  task = SquadTask(options,  # reads the files before TF loads
                   FLAGS.train_file if FLAGS.do_train else None,
                   FLAGS.predict_file if FLAGS.do_predict else None)
  from keras_adapters.training import experiment  # pylint: disable=g-import-not-at-top
  settings = experiment.Settings.from_flags(FLAGS)
  if settings.adapter_pack:
    settings = experiment.with_pack_settings(settings, task.check_pack)
  experiment.run(task, settings, driver_flags.load_pretrained_from_flags,
                 {f: getattr(FLAGS, f) for f in ("train_batch_size",
                                                 "predict_batch_size")})


main = driver_flags.main_with_clean_errors(run)


# The `keras-adapters-squad` command (and `python run_squad.py` at the repository root).
entry_point = driver_flags.entry_point_of(main, __name__)


if __name__ == "__main__":
  entry_point()
