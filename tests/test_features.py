"""make_dataset: tokenization with the real BERT vocab, packing, shuffling, errors."""

from pathlib import Path

import numpy as np
import pytest

from keras_adapters.data import features
from keras_adapters.data.glue import Example
from keras_adapters.errors import UserInputError

VOCAB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bert_vocab" / "vocab.txt"
pytestmark = pytest.mark.skipif(not VOCAB.is_file(), reason=f"BERT vocab not found at {VOCAB}")
CLS, SEP = 101, 102


def _dataset(examples, **kwargs):
  args = dict(vocab_file=str(VOCAB), do_lower_case=True, max_seq_length=16,
              label_list=["0", "1"], is_regression=False, batch_size=8, is_training=False)
  args.update(kwargs)
  return features.make_dataset(examples, **args)


def _rows(ds):
  """All (features dict of numpy rows, label) of a finite dataset, unbatched."""
  return [({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in ds.unbatch()]


def test_single_sentence_ids_padding_mask():
  (x, y), = _rows(_dataset([Example("0", "Hello, World!", None, "1")]))
  vocab = VOCAB.read_text(encoding="utf-8").split("\n")
  ids = [CLS, 7592, 1010, 2088, 999, SEP]
  assert [vocab[i] for i in ids] == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]
  np.testing.assert_array_equal(x["input_word_ids"], ids + [0] * 10)
  np.testing.assert_array_equal(x["input_mask"], [1] * 6 + [0] * 10)
  np.testing.assert_array_equal(x["input_type_ids"], [0] * 16)
  assert x["input_word_ids"].dtype == np.int32 and y == 1 and y.dtype == np.int32


def test_pair_type_ids_and_wordpieces():
  (x, y), = _rows(_dataset([Example("0", "The dog.", "unaffable", "0")], max_seq_length=10))
  vocab = VOCAB.read_text(encoding="utf-8").split("\n")
  tokens = [vocab[i] for i in x["input_word_ids"]]
  assert tokens == ["[CLS]", "the", "dog", ".", "[SEP]", "una", "##ffa", "##ble", "[SEP]", "[PAD]"]
  np.testing.assert_array_equal(x["input_type_ids"], [0] * 5 + [1] * 4 + [0])
  np.testing.assert_array_equal(x["input_mask"], [1] * 9 + [0])
  assert y == 0


def _longest_first(len_a, len_b, budget):
  """Google BERT's _truncate_seq_pair on lengths."""
  while len_a + len_b > budget:
    if len_a > len_b:
      len_a -= 1
    else:
      len_b -= 1
  return len_a, len_b


def test_truncation_matches_google_longest_first():
  letters = "abcdefghijklmnopqrstuvwxyz"  # one wordpiece each
  cases = [(10, 7), (7, 10), (9, 9), (12, 2), (2, 12), (3, 3), (20, 0)]
  examples = [Example(str(i), " ".join(letters[:a]), " ".join(letters[:b]) or "x", "0")
              for i, (a, b) in enumerate(cases)]
  max_len = 12
  for (x, _), e in zip(_rows(_dataset(examples, max_seq_length=max_len)), examples):
    ids = list(x["input_word_ids"])
    seps = [i for i, t in enumerate(ids) if t == SEP]
    got = (seps[0] - 1, seps[1] - seps[0] - 1)
    assert got == _longest_first(len(e.text_a.split()), len(e.text_b.split()), max_len - 3)
    assert ids[0] == CLS and ids[1] == 1037  # "a"


def test_single_truncation_and_test_labels_and_regression():
  long = " ".join(["word"] * 50)
  rows = _rows(_dataset([Example("0", long, None, None)], max_seq_length=8))
  ids = rows[0][0]["input_word_ids"]
  np.testing.assert_array_equal(ids, [CLS] + [2773] * 6 + [SEP])
  assert rows[0][1] == 0  # dummy label for test examples
  rows = _rows(_dataset([Example("0", "a", "b", 3.25), Example("1", "c", "d", None)],
                        label_list=None, is_regression=True))
  assert [y for _, y in rows] == [3.25, 0.0] and rows[0][1].dtype == np.float32


def _order(ds, n):
  return [float(v) for _, y in ds.take(n) for v in y.numpy()]


def test_shuffle_is_seeded_reshuffled_and_resumable():
  examples = [Example(str(i), "some text", None, float(i)) for i in range(20)]
  make = lambda seed: _dataset(examples, label_list=None, is_regression=True, batch_size=5,
                               is_training=True, seed=seed, repeat=True, max_seq_length=4)
  two_epochs = _order(make(1), 8)
  epoch1, epoch2 = two_epochs[:20], two_epochs[20:]
  assert sorted(epoch1) == sorted(epoch2) == list(range(20))
  assert epoch1 != list(range(20)) and epoch1 != epoch2  # shuffled, reshuffled per epoch
  assert _order(make(1), 8) == two_epochs  # same seed, fresh pipeline: same order
  assert _order(make(2), 4) != epoch1
  assert _order(make(1).skip(5), 3) == two_epochs[25:40]  # resume after 5 steps


def test_eval_order_and_drop_remainder():
  examples = [Example(str(i), "text", None, str(i % 2)) for i in range(7)]
  ds = _dataset(examples, batch_size=3, drop_remainder=True)
  assert ds.element_spec[0]["input_word_ids"].shape.as_list() == [3, 16]
  assert [list(y.numpy()) for _, y in ds] == [[0, 1, 0], [1, 0, 1]]
  assert features.steps_per_epoch(7, 3, drop_remainder=True) == 2
  assert features.steps_per_epoch(7, 3) == 3


@pytest.mark.parametrize("pair, length", [(True, 2), (False, 1), (False, 513), (True, 0)])
def test_bad_max_seq_length(pair, length):
  e = Example("0", "a", "b" if pair else None, "0")
  with pytest.raises(UserInputError, match=f"max_seq_length {length} out of range"):
    _dataset([e], max_seq_length=length)


def test_minimal_max_seq_length():
  (x, _), = _rows(_dataset([Example("0", "a b", "c d", "0")], max_seq_length=3))
  np.testing.assert_array_equal(x["input_word_ids"], [CLS, SEP, SEP])


def test_input_errors(tmp_path):
  with pytest.raises(UserInputError, match="vocab file .*nope.txt not found"):
    _dataset([Example("0", "a", None, "0")], vocab_file=str(tmp_path / "nope.txt"))
  with pytest.raises(UserInputError, match="mix single sentences and pairs"):
    _dataset([Example("0", "a", None, "0"), Example("1", "a", "b", "0")])
  with pytest.raises(UserInputError, match="label 'x' is not in label_list"):
    _dataset([Example("0", "a", None, "x")])
  with pytest.raises(UserInputError, match="no examples"):
    _dataset([])


def _mrpc_train(n):
  from harness import GLUE_DIR
  from keras_adapters.data import glue
  return glue.get_processor("mrpc").get_examples(str(GLUE_DIR / "MRPC"),
                                                 "train")[:n]


def test_dynamic_padding_cuts_only_padding():
  """Real MRPC pairs: the same shuffled batches, each cut to its longest
  pair rounded up to a multiple of 8; everything cut off is padding."""
  examples = _mrpc_train(96)
  kwargs = dict(max_seq_length=128, batch_size=16, is_training=True, seed=3,
                drop_remainder=True)
  static = list(_dataset(examples, **kwargs))
  dynamic = list(_dataset(examples, dynamic_padding=True, **kwargs))
  assert len(static) == len(dynamic) == 6
  lengths = []
  for (xs, ys), (xd, yd) in zip(static, dynamic):
    length = xd["input_word_ids"].shape[1]
    longest = int(xs["input_mask"].numpy().sum(1).max())
    assert length % 8 == 0 and longest <= length < longest + 8
    np.testing.assert_array_equal(ys, yd)
    for key in xs:
      np.testing.assert_array_equal(xs[key][:, :length], xd[key])
      assert not xs[key][:, length:].numpy().any()  # only padding went
    lengths.append(length)
  assert max(lengths) < 128  # MRPC pairs are far shorter than 128


@pytest.mark.large
def test_dynamic_padding_gives_the_same_model_outputs():
  """The real MiniLM with adapters gives the same logits for a batch padded
  to 128 and the same batch cut by dynamic padding (padding is masked)."""
  from harness import minilm
  from keras_adapters.models.text_classifier import build_classifier
  encoder, vocab_file, lower = minilm()
  model, _ = build_classifier(encoder, 2, "adapter", 64)
  kwargs = dict(vocab_file=vocab_file, do_lower_case=lower,
                max_seq_length=128, batch_size=16)
  (full, _), = _dataset(_mrpc_train(16), **kwargs)
  (cut, _), = _dataset(_mrpc_train(16), dynamic_padding=True, **kwargs)
  assert cut["input_word_ids"].shape[1] < 128
  np.testing.assert_allclose(model(full, training=False),
                             model(cut, training=False), atol=1e-5)
