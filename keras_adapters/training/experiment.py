"""The experiment runner both drivers share: strategy, model, compile,
resumable training, adapter pack, export and results, over a task object
(keras_adapters/tasks/).

A task provides `prepare(pretrained, settings)`, `build_model(pretrained, settings)` -> (model, encoder),
`compile(model, settings, total_steps)`, `num_train_batches(model, settings)`,
`train_batches(model, settings, skip)`,
`train_callbacks(model, settings, steps_per_epoch, chief)`,
`pack_config(model, settings, pretrained)`,
and `after_training(model, encoder, settings, step, chief, pretrained)`,
which evaluates, predicts and writes the task's files.
"""

import dataclasses
import os

from keras_adapters.config import ADAPTER_CONFIG_KEYS
from keras_adapters.config import AdapterConfig
from keras_adapters.errors import UserInputError



@dataclasses.dataclass(frozen=True)
class Settings:
  """The run's settings, read once from the flags (which stay untouched)."""
  output_dir: str
  do_train: bool
  seed: int
  train_batch_size: int
  num_train_epochs: float
  learning_rate: float
  warmup_proportion: float
  save_checkpoints_steps: int
  fine_tune_mode: str
  adapter_type: str
  adapter_size: int
  adapter_init_scale: float
  top_k_layers: int
  jit_compile: bool
  mixed_precision: str = "float32"
  adapter_pack: str = None
  export_dir: str = None
  fuse_packs: tuple = ()
  fused_adapter_sizes: tuple = ()
  leave_out: tuple = ()

  @classmethod
  def from_flags(cls, flag_values):
    """Settings from absl flags (the mode's default learning rate filled)."""
    from keras_adapters.training.optimizers import DEFAULT_LEARNING_RATES  # pylint: disable=g-import-not-at-top
    values = {f.name: getattr(flag_values, f.name, None)
              for f in dataclasses.fields(cls)}
    values["fuse_packs"] = tuple(values["fuse_packs"] or ())
    values["fused_adapter_sizes"] = ()
    values["leave_out"] = AdapterConfig(
        leave_out=values["leave_out"] or ()).leave_out
    values["learning_rate"] = (flag_values.learning_rate or
                               DEFAULT_LEARNING_RATES[values["fine_tune_mode"]])
    return cls(**values)

  def adapter_config(self):
    """The model's AdapterConfig (what a pack records)."""
    return AdapterConfig.from_dict(dataclasses.asdict(self))


def with_fusion_settings(settings):
  """`settings` with the adapter type and sizes of the packs it fuses."""
  from keras_adapters.saving.adapter_pack import fusion_settings  # pylint: disable=g-import-not-at-top
  fusion = fusion_settings(settings.fuse_packs)
  return dataclasses.replace(
      settings, adapter_type=fusion["adapter_type"],
      fused_adapter_sizes=tuple(fusion["fused_adapter_sizes"]),
      leave_out=tuple(fusion["leave_out"]))


def with_pack_settings(settings, check_task):
  """`settings` with the model settings of `settings.adapter_pack`, after
  `check_task(pack_config, pack_path)` accepted the pack."""
  from keras_adapters.saving.adapter_pack import read_pack  # pylint: disable=g-import-not-at-top
  if settings.do_train:
    raise UserInputError("--adapter_pack is for evaluation/prediction; drop "
                         "it or --do_train")
  config, _ = read_pack(settings.adapter_pack)
  check_task(config, settings.adapter_pack)
  return dataclasses.replace(settings, **{
      k: config[k] for k in ADAPTER_CONFIG_KEYS if config.get(k) is not None})


def _start(settings, batch_flags):
  """Seeds, then the strategy (after determinism is set); (strategy, chief)."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters.training import distribute  # pylint: disable=g-import-not-at-top
  from keras_adapters.cli import driver_flags  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(settings.seed)
  strategy = driver_flags.strategy_from_flags()
  for flag, value in batch_flags.items():
    distribute.check_batch_size(strategy, flag, value)
  return strategy, distribute.is_chief(strategy)


def _train(task, model, encoder, settings, steps_per_epoch, total_steps,
           chief, pretrained):
  """Resumable `fit`, then the pack (chief only); returns the step."""
  from keras_adapters.saving import adapter_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.training import checkpoints  # pylint: disable=g-import-not-at-top
  print(f"Training {total_steps} steps ({steps_per_epoch} per epoch, batch "
        f"{settings.train_batch_size}).")
  step = checkpoints.fit_resumable(
      model, lambda skip: task.train_batches(model, settings, skip),
      steps_per_epoch, total_steps, settings.output_dir,
      min(settings.save_checkpoints_steps, total_steps),
      callbacks=task.train_callbacks(model, settings, steps_per_epoch, chief))
  if chief:  # multi-worker: only the chief writes results
    path = os.path.join(settings.output_dir, "adapter_pack.npz")
    adapter_pack.save_adapter_pack(path, model, encoder,
                                   task.pack_config(model, settings, pretrained))
    print(f"Saved the trained variables to {path}")
  return step


def _restore(model, encoder, settings):
  """The pack's or output_dir's trained weights; returns the step."""
  from keras_adapters.saving import adapter_pack  # pylint: disable=g-import-not-at-top
  from keras_adapters.training import checkpoints  # pylint: disable=g-import-not-at-top
  if settings.adapter_pack:
    adapter_pack.load_adapter_pack(settings.adapter_pack, model, encoder)
    return 0
  return checkpoints.restore_trained(model, settings.output_dir)


def fewer_than_a_batch_error(num_examples):
  return UserInputError(f"{num_examples} training examples are fewer than "
                        "one batch; lower --train_batch_size")


def run(task, settings, load_pretrained, batch_flags):
  """Builds, trains (or restores) and hands over to the task's outputs.

  `load_pretrained()` returns the backbone (called under the strategy and
  the `settings.mixed_precision` policy, which is reset afterwards);
  `batch_flags` {flag: global batch size} must split over the replicas.
  """
  from keras_adapters.training import precision  # pylint: disable=g-import-not-at-top
  with precision.global_policy(settings.mixed_precision):
    return _run(task, settings, load_pretrained, batch_flags)


def _run(task, settings, load_pretrained, batch_flags):
  from keras_adapters.models import tuning  # pylint: disable=g-import-not-at-top
  strategy, chief = _start(settings, batch_flags)
  with strategy.scope():
    pretrained = load_pretrained()
    task.prepare(pretrained, settings)
    model, encoder = task.build_model(pretrained, settings)
    steps_per_epoch = task.num_train_batches(model, settings)
    if settings.do_train and steps_per_epoch == 0:
      raise fewer_than_a_batch_error(task.num_train_examples())
    total_steps = max(1, int(steps_per_epoch * settings.num_train_epochs))
    task.compile(model, settings, total_steps)
  print(f"Model: {pretrained.description}; fine_tune_mode="
        f"{settings.fine_tune_mode}; learning_rate={settings.learning_rate}; "
        f"jit_compile={bool(model.jit_compile)}; "
        f"mixed_precision={settings.mixed_precision}")
  print(tuning.format_parameter_report(tuning.parameter_report(model,
                                                               encoder)))
  if settings.do_train:
    step = _train(task, model, encoder, settings, steps_per_epoch,
                  total_steps, chief, pretrained)
  else:
    step = _restore(model, encoder, settings)
  task.after_training(model, encoder, settings, step, chief, strategy)
  return step
