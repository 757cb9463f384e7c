"""The one atomic file write: a hidden temp file beside the target, renamed."""

import os
import tempfile

from keras_adapters.saving import faults


def write_atomically(path, text):
  """Writes `text` to `path` via a temp file + rename."""
  # Hidden and named after `path`: a crash leaves `.name.XXXX.tmp` behind,
  # never a file that passes for a result.
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                             prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp")
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    f.write(text)
    faults.mid_write("results", tmp, f)  # test-only: KERAS_ADAPTERS_FAULT
  os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone
  os.replace(tmp, path)
