"""The one exception type for bad user input.

Drivers catch it and print its message as a single line (no traceback), so the
message must name the problem and the fix, e.g.
``UserInputError("train.tsv line 7: 2 columns, MRPC needs 5 (check --data_dir)")``.
"""


class UserInputError(ValueError):
  """Bad input from the user: a missing file, a malformed row, a wrong flag."""


def first_line(error, limit=200):
  """An exception's first message line (at most `limit` characters), or its
  type's name: the part of a library's error worth quoting in one line."""
  return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
