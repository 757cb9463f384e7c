"""What an adapter model is, as data: the enumerations the flags offer and
`AdapterConfig`. Free of TensorFlow, so flags and packs can be checked
before TensorFlow loads."""

import dataclasses
import re

from keras_adapters.errors import UserInputError

# What each mode trains: keras_adapters/models/tuning.py.
FINE_TUNE_MODES = ("adapter", "full", "top_k", "layer_norm", "head", "fusion")
# Where the adapters go in each Transformer block
# (layers/adapter_transformer_block.py).
ADAPTER_TYPES = ("houlsby", "pfeiffer", "parallel")


def _field(default, flag_help, choices=None):
  """A field that is also a command-line flag of the drivers, with its help
  (and its choices, for an enumeration): cli/driver_flags.py defines the
  flags from these."""
  return dataclasses.field(default=default, metadata=dict(
      flag_help=flag_help, choices=choices))


def flag_fields():
  """The AdapterConfig fields that are driver flags."""
  return [f for f in dataclasses.fields(AdapterConfig)
          if "flag_help" in f.metadata]


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
  """What a model trains and where its adapters go: the settings a pack
  records and a model is rebuilt from (AdapterHub's adapter configs, as one
  value instead of loose keywords).

  fine_tune_mode: FINE_TUNE_MODES (what trains: models/tuning.py);
  adapter_type: ADAPTER_TYPES (placement in each Transformer block);
  adapter_size: the bottleneck width m; adapter_init_scale: the std of the
  adapters' near-identity initialization; top_k_layers: the blocks that
  train in "top_k" mode; fused_adapter_sizes: the sizes of the adapters an
  AdapterFusion ("fusion" mode) combines, one per fused pack; leave_out:
  the Transformer blocks (0 = the lowest) that get no adapters and keep
  their pretrained LayerNorms frozen (AdapterHub's `leave_out`;
  AdapterDrop, Rücklé et al., 2021). Leaving out blocks 0..k-1 makes them
  a frozen trunk whose outputs training can compute once
  (`trunk_depth`; keras_adapters/data/trunk_cache.py).
  """
  fine_tune_mode: str = _field(
      "adapter", "What trains (see keras_adapters/models/tuning.py).",
      FINE_TUNE_MODES)
  adapter_type: str = _field(
      "houlsby", "Where adapters go: houlsby = the paper's two per block "
      "(after attention and FFN), pfeiffer = one after the FFN (Pfeiffer et "
      "al., 2021), parallel = one beside the FFN, update x4 (He et al., "
      "2022).", ADAPTER_TYPES)
  adapter_size: int = _field(64, "Adapter bottleneck size m.")
  adapter_init_scale: float = _field(1e-3, "Std of the adapters' init.")
  top_k_layers: int = _field(1, "Blocks trained in top_k mode.")
  # Set from the fused packs (--fuse_packs), not a flag of its own.
  fused_adapter_sizes: tuple = ()
  leave_out: tuple = _field(
      (), "Blocks (0 = the lowest) without adapters, their LayerNorms "
      "frozen (AdapterHub's leave_out; AdapterDrop). E.g. 0,1,2: blocks 0-2 "
      "become a frozen trunk (see --trunk_cache). Recorded in the pack.")

  def __post_init__(self):
    object.__setattr__(self, "fused_adapter_sizes",
                       tuple(self.fused_adapter_sizes or ()))
    object.__setattr__(self, "leave_out", _block_indices(self.leave_out))
    for name, allowed in (("fine_tune_mode", FINE_TUNE_MODES),
                          ("adapter_type", ADAPTER_TYPES)):
      if getattr(self, name) not in allowed:
        raise UserInputError(f"unknown {name} {getattr(self, name)!r}; "
                             f"choose one of {', '.join(allowed)}")
    for name in ("adapter_size", "top_k_layers"):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool):
        raise UserInputError(f"{name} must be an integer, got {value!r}")
    # (top_k_layers' range depends on the backbone: models/tuning.py)
    if self.adapter_size < 1:
      raise UserInputError(f"adapter_size must be >= 1, got "
                           f"{self.adapter_size}")
    if not self.adapter_init_scale >= 0:
      raise UserInputError(f"adapter_init_scale must be >= 0 (e.g. 1e-3), "
                           f"got {self.adapter_init_scale!r}")

  def to_dict(self):
    return dict(dataclasses.asdict(self),
                fused_adapter_sizes=list(self.fused_adapter_sizes),
                leave_out=list(self.leave_out))

  @property
  def trunk_depth(self):
    """k: blocks 0..k-1 are all left out (with "adapter" mode, nothing in
    them or below trains, so their output is a function of the text)."""
    k = 0
    while k in self.leave_out:
      k += 1
    return k

  def check_blocks(self, num_blocks):
    """Raises UserInputError unless `leave_out` fits a backbone of
    `num_blocks` Transformer blocks and leaves some adapters."""
    if self.leave_out and self.leave_out[-1] >= num_blocks:
      raise UserInputError(f"leave_out {list(self.leave_out)}: the backbone "
                           f"has blocks 0..{num_blocks - 1}")
    if self.fine_tune_mode in ("adapter", "fusion") and (
        len(self.leave_out) == num_blocks):
      raise UserInputError(f"leave_out {list(self.leave_out)} leaves no "
                           "block with adapters; leave out fewer blocks")

  @classmethod
  def from_dict(cls, values):
    """The config of `values` (a pack's record, flags, a Keras config):
    keys of other settings are ignored, missing ones take the defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items()
                  if k in names and v is not None})


def _block_indices(values):
  """`values` (ints, or a "0,1,2" string as the flag gives) as a sorted
  tuple of distinct block indices >= 0."""
  if isinstance(values, str):
    values = [v for v in values.replace(" ", "").split(",") if v]
  try:
    indices = [int(v) for v in values or ()]
  except (TypeError, ValueError):
    indices = None
  if indices is None or any(i < 0 for i in indices) or any(
      isinstance(v, (bool, float)) for v in values or ()):
    raise UserInputError(f"leave_out {values!r}: give block indices >= 0, "
                         "e.g. leave_out=[0, 1, 2] (--leave_out=0,1,2)")
  if len(set(indices)) != len(indices):
    raise UserInputError(f"leave_out {indices} repeats a block")
  return tuple(sorted(indices))


ADAPTER_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(AdapterConfig))


def check_task_name(name):
  """`name` if it can name a task: it routes requests in a multi-task
  SavedModel, so letters, digits, '_', '-' and '.' (a letter or digit
  first, at most 64)."""
  if not (isinstance(name, str) and
          re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name)):
    raise UserInputError(f"task name {name!r}: use 1-64 letters, digits, "
                         "'_', '-' or '.', starting with a letter or digit "
                         "(e.g. 'spam')")
  return name
