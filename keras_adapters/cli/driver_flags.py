"""Flags and plumbing shared by run_classifier.py and run_squad.py."""

import os
import sys
import tempfile

from absl import flags
from absl import logging

from keras_adapters.config import AdapterConfig
from keras_adapters.config import flag_fields
from keras_adapters.errors import UserInputError

FLAGS = flags.FLAGS


def define_common_flags(output_dir_help):
  """Model source, optimization, TPU and tuning flags (Google BERT names)."""
  flags.DEFINE_string("output_dir", None, output_dir_help)
  define_model_flags()
  flags.DEFINE_bool("do_train", False, "Train.")
  flags.DEFINE_integer("train_batch_size", 32, "Global training batch size.")
  flags.DEFINE_float("learning_rate", None, "Peak Adam learning rate; default "
                     "depends on --fine_tune_mode (adapter 1e-3, full 5e-5, "
                     "top_k 1e-4, layer_norm/head 1e-3, fusion 5e-5).")
  flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs.")
  flags.DEFINE_float("warmup_proportion", 0.1, "Share of steps with linear "
                     "learning-rate warmup.")
  flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint interval.")
  define_batching_flags()
  define_distribution_flags()
  define_adapter_config_flags()
  flags.DEFINE_integer("seed", 42, "Random seed (init, dropout, data order).")
  flags.DEFINE_bool("deterministic", False, "Enable TF op determinism "
                    "(bit-identical reruns on GPU; on CPU one --seed already "
                    "gives identical runs) and draw dropout from checkpointed "
                    "tf.random.Generators, so a resumed run ends with the "
                    "same weights as an unbroken one. Other dropout masks "
                    "than the default. See docs/RELIABILITY.md.")
  flags.DEFINE_bool("jit_compile", False, "Compile the train (and then "
                    "predict) steps with XLA (2 CPU cores: adapters 1.06x "
                    "faster, full fine-tuning 0.96x; "
                    "benchmarks/results/speed.jsonl). With --dynamic_padding "
                    "it compiles once per batch length.")
  flags.DEFINE_enum("mixed_precision", "float32",
                    ["float32", "mixed_bfloat16", "mixed_float16"],
                    "Keras dtype policy, as Model Garden's runtime: "
                    "mixed_bfloat16 for TPUs, mixed_float16 (with dynamic "
                    "loss scaling) for GPUs. Variables, LayerNorms, adapter "
                    "skip adds, logits and loss stay float32. Runs on a CPU "
                    "too, without speed-up (keras_adapters/training/precision.py).")


def define_batching_flags():
  """Training batches of examples of similar length
  (keras_adapters/data/bucketing.py)."""
  flags.DEFINE_bool("bucket_by_length", False, "Batch training examples of "
                    "similar length: each batch holds one length bucket and "
                    "is cut to its boundary (a fixed set of shapes, so it "
                    "works on TPU and compiles once per bucket with "
                    "--jit_compile). Every example once per epoch; see "
                    "keras_adapters/data/bucketing.py.")
  flags.DEFINE_list("bucket_boundaries", [], "With --bucket_by_length: "
                    "increasing bucket lengths in wordpieces (default: 4 "
                    "equal widths of max_seq_length, e.g. 32,64,96,128).")
  flags.DEFINE_bool("group_by_length", False, "Batch training examples of "
                    "similar length as transformers' Trainer does (sorted "
                    "groups of 50 batches), each batch cut to its longest "
                    "example: the least padding on CPU/GPU. Batch shapes "
                    "vary, so not with TPUs. See "
                    "keras_adapters/data/bucketing.py.")


def check_batching_flags(dynamic_padding=False):
  """Fails on batching flags that contradict each other or the TPU
  (`dynamic_padding`: run_classifier.py's --dynamic_padding)."""
  on_tpu = FLAGS.use_tpu or FLAGS.distribution_strategy == "tpu"
  if dynamic_padding and on_tpu:
    raise UserInputError("--dynamic_padding makes batch shapes vary, which "
                         "TPUs cannot run; drop it for TPU training")
  if FLAGS.bucket_by_length and dynamic_padding:
    raise UserInputError("--bucket_by_length already cuts each batch to its "
                         "bucket; drop --dynamic_padding")
  if FLAGS.group_by_length and (FLAGS.bucket_by_length or dynamic_padding):
    given = " and ".join(name for name, on in (
        ("--bucket_by_length", FLAGS.bucket_by_length),
        ("--dynamic_padding", dynamic_padding)) if on)
    raise UserInputError("--group_by_length already cuts each batch to its "
                         f"longest example; drop {given}")
  if FLAGS.group_by_length and on_tpu:
    raise UserInputError("--group_by_length makes batch shapes vary, which "
                         "TPUs cannot run; use --bucket_by_length")
  if FLAGS.bucket_boundaries and not FLAGS.bucket_by_length:
    raise UserInputError("--bucket_boundaries needs --bucket_by_length")
  bucket_boundaries_from_flags()


def bucket_boundaries_from_flags():
  """False, or the bucket boundaries of --bucket_by_length."""
  if not FLAGS.bucket_by_length:
    return False
  from keras_adapters.data import bucketing  # pylint: disable=g-import-not-at-top
  try:
    boundaries = [int(b) for b in FLAGS.bucket_boundaries]
  except ValueError:
    raise UserInputError(f"--bucket_boundaries {','.join(FLAGS.bucket_boundaries)}"
                         ": give comma-separated integers") from None
  return bucketing.boundaries_for(FLAGS.max_seq_length, boundaries)


def define_distribution_flags():
  """Cloud TPU (Google BERT names) and tf.distribute flags."""
  flags.DEFINE_bool("use_tpu", False, "Train on Cloud TPU.")
  flags.DEFINE_string("tpu_name", None, "Cloud TPU name or grpc:// address.")
  flags.DEFINE_string("tpu_zone", None, "GCE zone of the TPU.")
  flags.DEFINE_string("gcp_project", None, "GCP project of the TPU.")
  flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores (informational: taken "
                       "from the TPU system itself).")
  flags.DEFINE_enum("distribution_strategy", "auto",
                    ["auto", "off", "one_device", "mirrored",
                     "multi_worker_mirrored", "tpu"],
                    "tf.distribute strategy (Model Garden names). auto: tpu "
                    "with --use_tpu/--tpu_name, multi_worker_mirrored when "
                    "TF_CONFIG is set, mirrored on several local devices, "
                    "else off. Batch sizes are global. See "
                    "docs/DISTRIBUTED.md.")
  flags.DEFINE_integer("num_cpu_devices", 1, "Split the CPU into this many "
                       "logical devices (mirrored training without GPUs, "
                       "e.g. to test the multi-replica path).")


def define_model_flags():
  """Where the pretrained backbone comes from (see load_pretrained)."""
  flags.DEFINE_string("preset", "all-MiniLM-L6-v2", "Pretrained model used "
                      "when no checkpoint or hub module is given.")
  flags.DEFINE_string("bert_config_file", None, "Google bert_config.json (or "
                      "a Model Garden encoder config JSON) for "
                      "--init_checkpoint.")
  flags.DEFINE_string("init_checkpoint", None, "Google TF1 BERT or Model "
                      "Garden TF2 checkpoint, or a safetensors BERT directory.")
  flags.DEFINE_string("hub_module", None, "TF Hub BERT SavedModel dir/handle.")
  flags.DEFINE_string("vocab_file", None, "Defaults to the model's vocab.txt.")
  flags.DEFINE_bool("do_lower_case", None, "Defaults to the model's casing.")


def entry_point_of(main, module_name):
  """The console-script function of the driver module `module_name`: runs
  `main` with --help listing the driver's flags (run_with_help)."""
  return lambda: run_with_help(main, module_name, __name__)


def define_adapter_config_flags(flag_values=FLAGS):
  """One flag per AdapterConfig field that is a flag (config.flag_fields),
  its default, choices and help from the field."""
  for field in flag_fields():
    args = (field.name, field.default, field.metadata["flag_help"])
    if field.metadata["choices"]:
      flags.DEFINE_enum(field.name, field.default,
                        list(field.metadata["choices"]), args[2],
                        flag_values=flag_values)
    elif field.type is tuple:
      flags.DEFINE_list(field.name, list(field.default), args[2],
                        flag_values=flag_values)
    else:
      define = {int: flags.DEFINE_integer, float: flags.DEFINE_float}
      define[field.type](*args, flag_values=flag_values)


def check_common_flags():
  """Fails early on shared flags that would crash or mislead later, then
  checks --output_dir."""
  for name in ("train_batch_size", "save_checkpoints_steps", "adapter_size",
               "top_k_layers"):
    if FLAGS[name].value < 1:
      raise UserInputError(f"--{name}={FLAGS[name].value} must be >= 1")
  AdapterConfig(leave_out=FLAGS.leave_out)  # one line if malformed
  if FLAGS.learning_rate is not None and not FLAGS.learning_rate > 0:
    raise UserInputError(f"--learning_rate={FLAGS.learning_rate} must be "
                         "positive (e.g. 1e-3), or leave it out")
  if not 0 <= FLAGS.warmup_proportion <= 1:
    raise UserInputError(f"--warmup_proportion={FLAGS.warmup_proportion} "
                         "must be in [0, 1] (e.g. 0.1)")
  check_output_dir()


def check_output_dir():
  """Creates --output_dir, or fails early if it cannot be written."""
  try:
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    # A unique name: the workers of a multi-worker run probe at once.
    fd, probe = tempfile.mkstemp(dir=FLAGS.output_dir, prefix=".write_test")
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise UserInputError(f"--output_dir {FLAGS.output_dir} is not writable "
                         f"({e.strerror})") from None


def load_pretrained_from_flags():
  from keras_adapters.loaders.pretrained import load_pretrained
  return load_pretrained(
      preset=FLAGS.preset, bert_config_file=FLAGS.bert_config_file,
      init_checkpoint=FLAGS.init_checkpoint, hub_module=FLAGS.hub_module,
      vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)


def strategy_from_flags():
  if FLAGS.deterministic:  # before the model and datasets are built
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tf_keras  # pylint: disable=g-import-not-at-top
    tf.config.experimental.enable_op_determinism()
    # Dropout draws from tf.random.Generators, which go into the checkpoints
    # (training.checkpoint_manager): a resumed run is then bit-exact.
    tf_keras.backend.experimental.enable_tf_random_generator()
  from keras_adapters.training import distribute
  if FLAGS.num_cpu_devices < 1:
    raise UserInputError("--num_cpu_devices must be >= 1")
  strategy = distribute.get_strategy(
      FLAGS.distribution_strategy, FLAGS.use_tpu, FLAGS.tpu_name,
      FLAGS.tpu_zone, FLAGS.gcp_project, FLAGS.num_cpu_devices)
  print(f"Distribution: {distribute.describe(strategy)}")
  return strategy


def run_with_help(main, *modules):
  """`app.run(main)`, with the flags of `modules` (names) listed by --help:
  absl lists the flags of the script that was run, and a command's script
  (the root shim, a console script) defines none."""
  from absl import app  # pylint: disable=g-import-not-at-top
  for module in modules:
    for flag in FLAGS.get_key_flags_for_module(module):
      FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)


def main_with_clean_errors(run, program=None):
  """Returns an absl main that prints a UserInputError as one line, exit 2,
  after `program` (default: the name the program was called by)."""
  def main(argv):
    del argv
    if not FLAGS["verbosity"].present:  # Model Garden logs at INFO
      logging.set_verbosity(logging.WARNING)
    try:
      run()
    except UserInputError as e:
      name = program or os.path.basename(sys.argv[0])
      print(f"{name}: error: {e}", file=sys.stderr)
      sys.exit(2)
  return main
