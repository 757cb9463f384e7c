"""Deterministic fault injection for the crash tests (test-only).

Nothing happens unless the environment variable KERAS_ADAPTERS_FAULT is set.
It holds comma-separated points at which the process dies at once with
`os._exit(EXIT_CODE)`, as a SIGKILL or a power cut would stop it (no
`finally`, no atexit, no flush of Python buffers):

* `step:N`: right after training step N (after that step's checkpoint, if
  one was due);
* `write:KIND` or `write:KIND:N`: in the middle of the N-th (default 1st)
  write of KIND in this process, after its temp file or directory exists
  and before the rename that publishes it. KIND is `checkpoint` (a
  tf.train.CheckpointManager save), `pack` (adapter_pack.npz), `results`
  (eval_results.txt, predictions, dev curves: `training.write_atomically`),
  `export` (a SavedModel) or `trunk_cache` (data/trunk_cache.py).

The line `fault injected: <point>` goes to stderr first, so a test can tell
the injected death from any other.
"""

import os
import sys

from keras_adapters import compat

ENV = "KERAS_ADAPTERS_FAULT"
EXIT_CODE = 86
KINDS = ("checkpoint", "pack", "results", "export", "trunk_cache")
_writes = {}  # kind -> writes of that kind seen in this process


def _points():
  spec = os.environ.get(ENV, "").strip()
  points = [p.strip() for p in spec.split(",") if p.strip()]
  for point in points:
    parts = point.split(":")
    ok = (len(parts) == 2 and parts[0] == "step" and parts[1].isdigit()) or (
        parts[0] == "write" and len(parts) in (2, 3) and parts[1] in KINDS
        and (len(parts) == 2 or parts[2].isdigit()))
    if not ok:
      raise ValueError(f"{ENV}={spec!r}: cannot parse {point!r}; use "
                       f"step:N or write:<{'|'.join(KINDS)}>[:N]")
  return points


def enabled(kind=None):
  """Whether any point (or a write point of `kind`) is set."""
  points = _points()
  if kind is None:
    return bool(points)
  return any(p.split(":")[:2] == ["write", kind] for p in points)


def _die(point, detail):
  sys.stderr.write(f"fault injected: {point} ({detail})\n")
  sys.stderr.flush()
  os._exit(EXIT_CODE)  # pylint: disable=protected-access


def after_step(step):
  """Dies if `step:<step>` is set."""
  if f"step:{step}" in _points():
    _die(f"step:{step}", "after the step and its checkpoint")


def mid_write(kind, temp_path, open_file=None):
  """Counts a write of `kind`; dies if this is the one a point names.
  Call it when `temp_path` exists and before it is renamed into place. With
  `open_file` (the temp file, fully written), it first cuts the file to
  half its length, as a write stopped halfway would leave it."""
  points = _points()
  if not points:
    return
  _writes[kind] = _writes.get(kind, 0) + 1
  n = _writes[kind]
  for point in points:
    parts = point.split(":")
    if parts[:2] == ["write", kind] and int((parts[2:] or ["1"])[0]) == n:
      if open_file is not None:
        open_file.flush()
        os.ftruncate(open_file.fileno(),
                     os.fstat(open_file.fileno()).st_size // 2)
      _die(point, f"write #{n}, {temp_path} not yet renamed")


def hook_checkpoint_writes():
  """Makes TF checkpoint saves call `mid_write("checkpoint", ...)` once the
  shards are in `<prefix>_temp/` and before TF moves them into place.
  Does nothing unless a `write:checkpoint` point is set."""
  if not enabled("checkpoint"):
    return
  io_ops = compat.checkpoint_io_ops()
  merge = io_ops.merge_v2_checkpoints
  if getattr(merge, "_fault_hooked", False):
    return

  def hooked(checkpoint_prefixes, destination_prefix, *args, **kwargs):
    mid_write("checkpoint", f"{_text(destination_prefix)}_temp")
    return merge(checkpoint_prefixes, destination_prefix, *args, **kwargs)
  hooked._fault_hooked = True  # pylint: disable=protected-access
  io_ops.merge_v2_checkpoints = hooked


def _text(value):
  try:
    value = value.numpy()
  except AttributeError:
    pass
  return value.decode() if isinstance(value, bytes) else str(value)
