"""tf.distribute plumbing shared by run_classifier.py and run_squad.py.

One driver runs unchanged on one CPU, on several local devices
(MirroredStrategy), on several machines (MultiWorkerMirroredStrategy from
TF_CONFIG) or on a Cloud TPU (TPUStrategy). Batch sizes given to the drivers
are global; `per_replica_input` splits every global batch across replicas so a
step sees the same examples whatever the number of replicas, and
`padded_batches` gives eval/predict full, statically shaped batches (TPU)
whose padding rows the caller drops. In multi-worker runs only the chief
writes results (`is_chief`); other workers save into `worker_dir` and delete
it (tf_keras multi-worker guide).
"""

import json
import os
import shutil
import socket
import urllib.parse

import tensorflow as tf
import tf_keras
from official.common import distribute_utils

from keras_adapters.errors import UserInputError
from keras_adapters.errors import first_line

# Model Garden's names (official.common.distribute_utils) plus "auto".
STRATEGIES = ("auto", "off", "one_device", "mirrored",
              "multi_worker_mirrored", "tpu")
_TPU_CONNECT_TIMEOUT = 10  # seconds; an unreachable grpc:// address hangs TF


def use_cpu_devices(num_cpu_devices):
  """Splits the host CPU into `num_cpu_devices` logical devices, so that
  MirroredStrategy has several replicas on a CPU-only machine."""
  if num_cpu_devices <= 1:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpu_devices)
  except RuntimeError:  # TF already initialized with another split
    if len(tf.config.list_logical_devices("CPU")) != num_cpu_devices:
      raise UserInputError(
          f"--num_cpu_devices={num_cpu_devices}: TensorFlow was already "
          "initialized; set it before any TF op runs") from None


def get_strategy(distribution_strategy="auto", use_tpu=False, tpu_name=None,
                 tpu_zone=None, gcp_project=None, num_cpu_devices=1):
  """Returns the tf.distribute strategy the drivers train under.

  "auto": TPU if --use_tpu/--tpu_name, multi-worker if TF_CONFIG is set,
  mirrored if there are several local GPUs or logical CPUs, else the default
  strategy. The other names are Model Garden's.
  """
  use_cpu_devices(num_cpu_devices)
  name = strategy_name(distribution_strategy, use_tpu, tpu_name,
                       lambda: len(_local_devices()))
  if name == "tpu":
    return _tpu_strategy(tpu_name, tpu_zone, gcp_project)
  if name == "multi_worker_mirrored":
    # Not Model Garden's: it builds the deprecated experimental class.
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()
  num_gpus = len(tf.config.list_logical_devices("GPU"))
  if name == "mirrored" and not num_gpus:
    # Model Garden's mirrored uses only CPU:0; replicate over every
    # logical CPU (--num_cpu_devices) instead.
    return tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")])
  return distribute_utils.get_distribution_strategy(
      name, num_gpus=num_gpus if name == "mirrored" else min(num_gpus, 1))


def strategy_name(distribution_strategy, use_tpu, tpu_name, num_devices):
  """What "auto" (or an explicit name) resolves to; see get_strategy.
  `num_devices()` counts local devices; it initializes TF, which must not
  happen before MultiWorkerMirroredStrategy() configures collectives."""
  if distribution_strategy not in STRATEGIES:
    raise UserInputError(f"--distribution_strategy={distribution_strategy!r}"
                         f" is not one of {', '.join(STRATEGIES)}")
  if distribution_strategy != "auto":
    return distribution_strategy
  if use_tpu or tpu_name:
    return "tpu"
  if os.environ.get("TF_CONFIG"):
    return "multi_worker_mirrored"
  return "mirrored" if num_devices() > 1 else "off"


def describe(strategy):
  """E.g. "MirroredStrategy, 2 replicas"."""
  n = strategy.num_replicas_in_sync
  kinds = ((tf.distribute.TPUStrategy, "TPUStrategy"),
           (tf.distribute.MultiWorkerMirroredStrategy,
            "MultiWorkerMirroredStrategy"),
           (tf.distribute.MirroredStrategy, "MirroredStrategy"),
           (tf.distribute.OneDeviceStrategy, "OneDeviceStrategy"))
  name = next((label for kind, label in kinds
               if isinstance(strategy, kind)), "default strategy")
  return f"{name}, {n} replica{'s' if n > 1 else ''}"


def _local_devices():
  return (tf.config.list_logical_devices("GPU") or
          tf.config.list_logical_devices("CPU"))


def _check_tf_config():
  try:
    config = json.loads(os.environ.get("TF_CONFIG", ""))
    config["cluster"], config["task"]["type"], config["task"]["index"]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError):
    raise UserInputError(
        "multi-worker training needs TF_CONFIG as JSON like {\"cluster\": "
        "{\"worker\": [\"host1:port\", \"host2:port\"]}, \"task\": {\"type\": "
        "\"worker\", \"index\": 0}}; fix or unset TF_CONFIG") from None


def _tpu_strategy(tpu_name, tpu_zone, gcp_project):
  """Google BERT's TPUClusterResolver(tpu_name, zone, project), failing with
  one line (instead of hanging or a traceback) when no TPU answers."""
  where = (f"tpu_name={tpu_name!r}, tpu_zone={tpu_zone!r}, "
           f"gcp_project={gcp_project!r}")
  fix = "check --tpu_name/--tpu_zone/--gcp_project or drop --use_tpu"
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu_name, zone=tpu_zone, project=gcp_project)
    master = resolver.master()
  except Exception as e:  # pylint: disable=broad-except
    # ValueError (no name), google.auth errors (no GCP credentials: not on
    # GCP), HttpError (no such TPU) and more: all mean "no TPU here".
    raise UserInputError(f"no TPU reachable ({where}): {type(e).__name__}: "
                         f"{first_line(e)}; {fix}") from None
  if master.startswith("grpc://"):
    address = urllib.parse.urlparse(master)
    try:
      socket.create_connection((address.hostname, address.port),
                               timeout=_TPU_CONNECT_TIMEOUT).close()
    except OSError as e:
      raise UserInputError(f"no TPU reachable at {master} ({where}): "
                           f"{e.strerror or e}; {fix}") from None
  try:
    if master not in ("", "local"):
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise UserInputError(f"TPU at {master or 'local'} did not initialize "
                         f"({where}): {first_line(e)}; {fix}") from None
  return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
  """True unless this is a non-chief worker of a multi-worker cluster."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type or isinstance(
      strategy, tf.distribute.TPUStrategy):
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return (resolver.task_type == "worker" and resolver.task_id == 0
          and not has_chief)


def worker_dir(strategy, output_dir):
  """output_dir on the chief; elsewhere a private directory under output_dir
  (non-chief workers must join collective saves but not overwrite the
  chief's files). Remove it with `remove_worker_dir` when done."""
  if is_chief(strategy):
    return output_dir
  resolver = strategy.cluster_resolver
  path = os.path.join(output_dir,
                      f".worker_{resolver.task_type}_{resolver.task_id}")
  shutil.rmtree(path, ignore_errors=True)  # left over by a killed run
  return path


def remove_worker_dir(strategy, output_dir):
  if not is_chief(strategy):
    shutil.rmtree(worker_dir(strategy, output_dir), ignore_errors=True)


def check_batch_size(strategy, flag, batch_size):
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise UserInputError(f"--{flag}={batch_size} is the global batch and "
                         f"must split evenly over {replicas} replicas; use a "
                         f"multiple of {replicas}")


def per_replica_input(make_global_batches):
  """Model.fit input that distributes `make_global_batches()` (a dataset of
  full global batches) with `distribute_datasets_from_function`.

  Every input pipeline (one per worker/TPU host) builds the same global
  batches and keeps the slices of its own replicas, so a training step uses
  exactly the examples of the single-device run, in any replica layout.
  """

  def dataset_fn(context):
    ds = make_global_batches()
    global_batch = tf.nest.flatten(ds.element_spec)[0].shape[0]
    if global_batch is None:
      raise ValueError("training batches need a static size "
                       "(batch(..., drop_remainder=True))")
    per_replica = context.get_per_replica_batch_size(global_batch)
    replicas = context.num_replicas_in_sync
    local = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local

    def own_slices(*batch):
      split = tf.nest.map_structure(
          lambda t: tf.reshape(t, [replicas, per_replica] + [
              -1 if d is None else d  # dynamic padding: any length
              for d in t.shape[1:].as_list()])[first:first + local],
          batch)
      return split if len(split) > 1 else split[0]

    return ds.map(own_slices).unbatch().prefetch(tf.data.AUTOTUNE)

  return tf_keras.utils.experimental.DatasetCreator(dataset_fn)


def padded_batches(batched, num_examples, batch_size):
  """Re-batches `batched` into full batches of `batch_size` (static shapes,
  an even split over replicas), repeating its first example as padding.
  Keep only the first `num_examples` outputs of `model.predict`. The
  batch count is declared (`unbatch` loses it): Keras then runs exactly
  that many steps instead of reading to the end of the data, which TF logs
  as "Local rendezvous is aborting with status: OUT_OF_RANGE"."""
  examples = batched.unbatch()
  padding = (-num_examples) % batch_size
  if padding:
    examples = examples.concatenate(examples.take(1).repeat(padding))
  batches = examples.batch(batch_size, drop_remainder=True).apply(
      tf.data.experimental.assert_cardinality(
          (num_examples + padding) // batch_size))
  return batches.prefetch(tf.data.AUTOTUNE)
