"""The one atomic file write: a hidden temp file beside the target, renamed
into place only once fully written (a crash never leaves a file that passes
for a result, a pack or a split)."""

import contextlib
import os
import tempfile

from keras_adapters.saving import faults


@contextlib.contextmanager
def atomic_file(path, mode="w", fault_kind="results"):
  """`with atomic_file(path) as f: ...` writes `path` whole or not at all.

  The temp file is `.name.XXXX.tmp` in `path`'s directory (created if
  missing); `mode` "w" (UTF-8 text) or "wb". `fault_kind`: the test-only
  write point (KERAS_ADAPTERS_FAULT=write:<kind>) it passes.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp",
                             prefix=f".{os.path.basename(path)}.")
  try:
    with os.fdopen(fd, mode, **({} if "b" in mode else
                                dict(encoding="utf-8"))) as f:
      yield f
      faults.mid_write(fault_kind, tmp, f)  # test-only: KERAS_ADAPTERS_FAULT
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone
    os.replace(tmp, path)
  except BaseException:  # (a fault point's exit skips this: os._exit)
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_atomically(path, text):
  """Writes `text` to `path` atomically (atomic_file)."""
  with atomic_file(path) as f:
    f.write(text)
