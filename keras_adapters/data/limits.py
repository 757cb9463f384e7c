"""Input-size limits, checked before TensorFlow loads (so a bad flag fails
in a fraction of a second)."""

from keras_adapters.errors import UserInputError

MAX_SEQ_LENGTH_LIMIT = 512  # BERT's position embeddings


def check_max_seq_length(max_seq_length, is_pair, limit=MAX_SEQ_LENGTH_LIMIT):
  """[CLS] + [SEP] (+ [SEP]) must fit, and the model's positions must too."""
  need = 3 if is_pair else 2
  if not isinstance(max_seq_length, int) or not need <= max_seq_length <= limit:
    raise UserInputError(
        f"max_seq_length {max_seq_length!r} out of range: need {need}..{limit} "
        f"([CLS] + {'2 x [SEP]' if is_pair else '[SEP]'} take {need}); set "
        "--max_seq_length e.g. 128")
  return max_seq_length
