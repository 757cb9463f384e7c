"""The one place where raw text becomes BERT inputs."""

import hashlib
import os

import tensorflow as tf
import tf_keras
from official.nlp.modeling import layers

from keras_adapters.data.limits import check_max_seq_length
from keras_adapters.errors import UserInputError

IDS = ("input_word_ids", "input_mask", "input_type_ids")


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterTextPreprocessor(tf_keras.layers.Layer):
  """Raw strings (one text, or a pair) -> BERT input ids.

  tensorflow-text WordPiece through Model Garden's `BertTokenizer`, packed by
  `BertPackInputs` (pairs truncated round-robin, which for two segments keeps
  Google BERT's longest-first tokens). Called on `text_a` [batch] and an
  optional `text_b` [batch], it returns {"input_word_ids", "input_mask",
  "input_type_ids"}, int32 [batch, max_seq_length]. It tokenizes the
  training and evaluation texts (keras_adapters/data/features.py) and runs in
  the serving graph and in the multi-task server alike.

  >>> import os
  >>> from keras_adapters.loaders.presets import load_preset
  >>> vocab = load_preset()[1]
  >>> pre = AdapterTextPreprocessor(vocab, lower_case=True, max_seq_length=8)
  >>> pre(["Hello world"])["input_word_ids"].numpy().tolist()
  [[101, 7592, 2088, 102, 0, 0, 0, 0]]
  """

  def __init__(self, vocab_file, lower_case=True, max_seq_length=128,
               **kwargs):
    super().__init__(**kwargs)
    if not isinstance(max_seq_length, int) or max_seq_length < 2:
      check_max_seq_length(max_seq_length, is_pair=False)  # raises
    # The upper limit (and 3 for pairs) is checked where the layout is
    # known: by the classifier, the datasets and the exports.
    if not os.path.isfile(vocab_file):
      raise UserInputError(f"vocab file {vocab_file} not found; pass the "
                           "vocab.txt of the BERT checkpoint (--vocab_file)")
    self.vocab_file, self.lower_case = vocab_file, bool(lower_case)
    self.max_seq_length = max_seq_length
    self.tokenizer = layers.BertTokenizer(vocab_file=vocab_file,
                                          lower_case=self.lower_case)
    self.packer = layers.BertPackInputs(
        max_seq_length,
        special_tokens_dict=self.tokenizer.get_special_tokens_dict())

  def call(self, text_a, text_b=None):
    return _tokenize_and_pack(self, text_a, text_b)

  def get_config(self):
    return dict(super().get_config(), vocab_file=self.vocab_file,
                lower_case=self.lower_case,
                max_seq_length=self.max_seq_length)

  def get_config_with_vocabulary(self):
    """get_config with the vocabulary itself (a model file that travels
    without its vocab.txt); from_config writes it back to a file."""
    with open(self.vocab_file, encoding="utf-8") as f:
      return dict(self.get_config(), vocabulary=f.read().splitlines())

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    vocabulary = config.pop("vocabulary", None)
    if vocabulary is not None:
      config["vocab_file"] = vocabulary_file(vocabulary)
    return cls(**config)


def vocabulary_file(tokens):
  """A vocab.txt holding `tokens`, one per line: written once, named by its
  content, under the keras_adapters cache."""
  from keras_adapters.loaders.presets import cache_dir  # pylint: disable=g-import-not-at-top
  from keras_adapters.saving.atomic import write_atomically  # pylint: disable=g-import-not-at-top
  text = "".join(f"{t}\n" for t in tokens)
  digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
  path = os.path.join(cache_dir("vocab"), f"{digest}.txt")
  if not os.path.isfile(path):
    write_atomically(path, text)
  return path


# Plain Python control flow: AutoGraph need not convert this, nor the
# tokenizer layers' calls below it (as for the encoder's call).
@tf.autograph.experimental.do_not_convert
def _tokenize_and_pack(preprocessor, text_a, text_b):
  segments = [preprocessor.tokenizer(text_a)]
  if text_b is not None:
    segments.append(preprocessor.tokenizer(text_b))
  return preprocessor.packer(segments)


def encode_labels(values, labels, is_regression, names=None):
  """Task labels -> class indices into `labels` (float scores for regression).

  A label may be the label string itself or, for labels written as numbers
  ("0", "1"), that number. Without `labels`, integers 0..n-1 are the classes.
  None (an unlabeled test example) becomes 0. `names[i]` names example i in
  errors.
  """
  index = {str(l): i for i, l in enumerate(labels or [])}
  out = []
  for i, value in enumerate(values):
    where = names[i] if names else f"example {i}"
    if value is None:
      out.append(0)
    elif is_regression:
      try:
        out.append(float(value))
      except (TypeError, ValueError):
        raise UserInputError(f"{where}: score {value!r} is not a number; a "
                             "regression task needs numeric labels") from None
    elif labels is not None:
      key = str(value.decode() if isinstance(value, bytes) else value)
      if key not in index:
        raise UserInputError(f"{where}: label {value!r} is not in label_list "
                             f"{list(labels)}; pass the task's label list")
      out.append(index[key])
    else:
      out.append(value)
  return out
