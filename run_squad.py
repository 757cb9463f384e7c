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
  python run_squad.py --do_train --do_predict \
    --train_file runs/squad/train.json --predict_file runs/squad/eval.json \
    --max_seq_length 384 --doc_stride 128 --output_dir runs/squad/adapter
"""

import os
import time

# TF's C++ INFO/WARNING lines would bury the one-line errors;
# TF_CPP_MIN_LOG_LEVEL=0 brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from keras_adapters import driver_flags
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
                    "fine_tune_mode/adapter_size/top_k_layers are used.")
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
  driver_flags.check_common_flags()


def _use_pack_config():
  """Builds the model as the pack's training run did."""
  from keras_adapters.adapter_pack import read_pack  # pylint: disable=g-import-not-at-top
  if FLAGS.do_train:
    raise UserInputError("--adapter_pack is for prediction; drop it or "
                         "--do_train")
  config, _ = read_pack(FLAGS.adapter_pack)
  if config.get("task_name") != "squad":
    raise UserInputError(f"{FLAGS.adapter_pack} was trained for task "
                         f"{config.get('task_name')!r}, not SQuAD; use the "
                         "pack of a run_squad.py run")
  for name in ("fine_tune_mode", "adapter_size", "top_k_layers"):
    if name in config:
      setattr(FLAGS, name, config[name])


def _write_json(path, obj):
  import json  # pylint: disable=g-import-not-at-top
  from keras_adapters import training  # pylint: disable=g-import-not-at-top
  training.write_atomically(path, json.dumps(obj, indent=4) + "\n")


def run():
  _check_flags()
  from absl import logging  # pylint: disable=g-import-not-at-top
  from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
  # Read (and so validate) every file before any slow work starts.
  train = predict = None
  if FLAGS.do_train:
    train = data.read_squad_file(FLAGS.train_file, True,
                                 FLAGS.version_2_with_negative)
    if not train.examples:
      raise UserInputError(f"{FLAGS.train_file}: no usable training question")
  if FLAGS.do_predict:
    predict = data.read_squad_file(FLAGS.predict_file, False,
                                   FLAGS.version_2_with_negative)
    if not predict.examples:
      raise UserInputError(f"{FLAGS.predict_file}: no usable question")
  if FLAGS.adapter_pack:
    _use_pack_config()

  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters import adapter_pack, distribute, training, tuning  # pylint: disable=g-import-not-at-top
  from keras_adapters.squad import evaluate, model as squad_model  # pylint: disable=g-import-not-at-top

  tf_keras.utils.set_random_seed(FLAGS.seed)
  strategy = driver_flags.strategy_from_flags()
  for flag in ("train_batch_size", "predict_batch_size"):
    distribute.check_batch_size(strategy, flag, getattr(FLAGS, flag))
  chief = distribute.is_chief(strategy)  # only the chief writes results
  with strategy.scope():
    pretrained = driver_flags.load_pretrained_from_flags()
  max_positions = pretrained.encoder.get_config().get("max_sequence_length")
  if max_positions and FLAGS.max_seq_length > max_positions:
    raise UserInputError(f"--max_seq_length {FLAGS.max_seq_length} exceeds "
                         f"the model's {max_positions} positions")
  tokenizer = data.CachedTokenizer(pretrained.vocab_file,
                                   pretrained.do_lower_case)
  window = dict(max_seq_length=FLAGS.max_seq_length,
                doc_stride=FLAGS.doc_stride,
                max_query_length=FLAGS.max_query_length)
  # squad_lib logs its first 20 windows at INFO; show them with --verbosity=1.
  verbosity = logging.get_verbosity()
  if verbosity < logging.DEBUG:
    logging.set_verbosity(logging.WARNING)
  features = {}
  for name, squad in (("train", train), ("predict", predict)):
    if squad is not None:
      start = time.time()
      features[name] = data.convert_examples_to_features(
          squad.examples, tokenizer, is_training=name == "train", **window)
      print(f"{name}: {len(squad.examples)} questions from {squad.path} -> "
            f"{len(features[name])} windows of {FLAGS.max_seq_length} "
            f"({time.time() - start:.0f}s)")
  logging.set_verbosity(verbosity)

  with strategy.scope():
    model, encoder = squad_model.build_span_labeler(
        pretrained.encoder, FLAGS.fine_tune_mode, FLAGS.adapter_size,
        FLAGS.adapter_init_scale, FLAGS.top_k_layers)
    steps_per_epoch = len(features.get("train", [])) // FLAGS.train_batch_size
    if FLAGS.do_train and steps_per_epoch == 0:
      raise UserInputError(f"{len(features['train'])} training windows are "
                           "fewer than one batch; lower --train_batch_size")
    total_steps = max(1, int(steps_per_epoch * FLAGS.num_train_epochs))
    learning_rate = driver_flags.learning_rate()
    model.compile(
        optimizer=training.create_optimizer(learning_rate, total_steps,
                                            FLAGS.warmup_proportion),
        loss=[squad_model.span_loss(), squad_model.span_loss()],
        loss_weights=[0.5, 0.5], jit_compile=FLAGS.jit_compile)
  print(f"Model: {pretrained.description}; fine_tune_mode="
        f"{FLAGS.fine_tune_mode}; learning_rate={learning_rate}; "
        f"jit_compile={bool(model.jit_compile)}")
  print(tuning.format_parameter_report(tuning.parameter_report(model,
                                                               encoder)))

  if FLAGS.do_train:
    print(f"Training {total_steps} steps ({steps_per_epoch} per epoch, batch "
          f"{FLAGS.train_batch_size}).")
    step = training.fit_resumable(
        model, lambda skip: data.train_dataset(
            features["train"], FLAGS.train_batch_size, FLAGS.seed, skip),
        steps_per_epoch, total_steps, FLAGS.output_dir,
        min(FLAGS.save_checkpoints_steps, total_steps))
    pack_path = os.path.join(FLAGS.output_dir, "adapter_pack.npz")
    if chief:
      adapter_pack.save_adapter_pack(pack_path, model, encoder, dict(
          task_name="squad", version_2_with_negative=(
              FLAGS.version_2_with_negative),
          fine_tune_mode=FLAGS.fine_tune_mode,
          adapter_size=FLAGS.adapter_size, top_k_layers=FLAGS.top_k_layers,
          model=pretrained.description,
          do_lower_case=pretrained.do_lower_case, **window))
      print(f"Saved the trained variables to {pack_path}")
  elif FLAGS.adapter_pack:
    adapter_pack.load_adapter_pack(FLAGS.adapter_pack, model, encoder)
    step = 0
  else:
    step = training.restore_trained(model, FLAGS.output_dir)

  if FLAGS.do_predict:
    start = time.time()
    num_windows = len(features["predict"])
    # Full batches (static shapes, even replica split); drop the padding.
    batches = distribute.padded_batches(
        data.predict_dataset(features["predict"], FLAGS.predict_batch_size),
        num_windows, FLAGS.predict_batch_size)
    start_logits, end_logits = (logits[:num_windows] for logits in
                                model.predict(batches, verbose=0))
    if not chief:
      return
    print(f"Predicted {len(features['predict'])} windows in "
          f"{time.time() - start:.0f}s")
    predictions, nbest, null_odds = data.postprocess(
        predict.examples, features["predict"], start_logits, end_logits,
        n_best_size=FLAGS.n_best_size,
        max_answer_length=FLAGS.max_answer_length,
        do_lower_case=pretrained.do_lower_case,
        version_2_with_negative=FLAGS.version_2_with_negative,
        null_score_diff_threshold=FLAGS.null_score_diff_threshold)
    out = FLAGS.output_dir
    _write_json(os.path.join(out, "predictions.json"), predictions)
    _write_json(os.path.join(out, "nbest_predictions.json"), nbest)
    written = "predictions.json, nbest_predictions.json"
    if FLAGS.version_2_with_negative:
      _write_json(os.path.join(out, "null_odds.json"), null_odds)
      written += ", null_odds.json"
    print(f"Wrote {written} ({len(predictions)} questions) to {out} "
          f"({time.time() - start:.0f}s in all)")
    if not predict.has_answers:
      print(f"{FLAGS.predict_file} has no gold answers for every question: "
            "not evaluated")
      return
    result = evaluate.evaluate(
        predict.articles, predictions, FLAGS.version_2_with_negative)
    if FLAGS.version_2_with_negative:
      with_odds = evaluate.evaluate(predict.articles, predictions, True,
                                    null_odds)
      result.update({k: v for k, v in with_odds.items()
                     if k.startswith("best_")})
    text = evaluate.format_results(result, step)
    path = os.path.join(out, "eval_results.txt")
    training.write_atomically(path, text)
    print(f"***** Eval results ({predict.num_questions} questions, official "
          f"SQuAD v{'2.0' if FLAGS.version_2_with_negative else '1.1'} "
          f"metrics) -> {path}")
    print(text, end="")


main = driver_flags.main_with_clean_errors(run, "run_squad.py")


if __name__ == "__main__":
  app.run(main)
