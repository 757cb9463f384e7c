"""TensorFlow's C++ log level for the commands: set before TF loads (TF reads
TF_CPP_MIN_LOG_LEVEL once, at its first log line).

Imports nothing of TensorFlow or of the package.
"""

import os

# Present on Linux (and WSL 2) machines with an NVIDIA driver.
_GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")


def has_gpu_driver():
  """True if an NVIDIA GPU driver is installed here."""
  return any(os.path.exists(p) for p in _GPU_DRIVER_PATHS)


def quiet_tf_logs(environ=None):
  """Sets TF_CPP_MIN_LOG_LEVEL unless the user did (theirs wins: 0 shows
  every C++ line); returns the level in force.

  The default is 2 (C++ INFO and WARNING lines hidden, such as `Local
  rendezvous is aborting with status: OUT_OF_RANGE: End of sequence`), or 3
  on a machine without a GPU driver. There TF's C++ ERROR lines are not
  errors of the run: its failed CUDA probe (`failed call to cuInit`) and
  oneDNN's int64 fallback notice. Real errors still show: TF raises them to
  Python, where the commands print them (a UserInputError as one line), and
  with a GPU, level 2 keeps the C++ error lines (cuDNN, out of memory)
  that explain them.
  """
  environ = os.environ if environ is None else environ
  return environ.setdefault("TF_CPP_MIN_LOG_LEVEL",
                            "2" if has_gpu_driver() else "3")
