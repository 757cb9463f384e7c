"""benchmarks/adapterhub/compare.py's bookkeeping (standard library only, no
training): settings, interleaving, figures, newest session, table."""

import pytest

from benchmarks.adapterhub import compare
from benchmarks.adapterhub import padding


def test_settings_are_checked_and_interleaved_alternately():
  settings = compare.parse_settings(compare.DEFAULT_SETTINGS)
  order = compare.interleaved(settings, reverse=False)
  assert order[:4] == ["ours:static", "hf:static", "ours:dynamic",
                       "hf:dynamic"]
  assert compare.interleaved(settings, reverse=True) == order[::-1]
  assert sorted(order) == sorted(settings)
  with pytest.raises(SystemExit, match="unknown setting 'hf:bucketed'"):
    compare.parse_settings("ours:static,hf:bucketed")


def test_figures_leave_out_the_first_epoch_and_time_to_the_end():
  figures = compare.figures([(10.0, 5, 1000, 2000), (8.0, 5, 1200, 2000)],
                            start=100.0, train_end_unix=130.0)
  assert figures["useful_tokens_per_s"] == 150.0
  assert figures["useful_tokens_per_s_all"] == round(2200 / 18, 1)
  assert figures["padding_share"] == 0.45
  assert figures["to_train_end_seconds"] == 30.0 and figures["steps"] == 10


def _row(session, setting, rate, accuracy):
  return dict(session=session, round=1, task="MRPC", setting=setting,
              metrics=dict(accuracy=accuracy, f1=accuracy),
              score_keys=["accuracy", "f1"], useful_tokens_per_s=rate,
              useful_tokens_per_s_all=rate / 2, padding_share=0.5,
              epoch_seconds=[1.0, 2.0], epoch_fed_tokens=[7, 4 * rate],
              to_train_end_seconds=rate, peak_rss_mb=1000)


def test_table_compares_the_best_setting_of_each_library():
  rows = compare.newest([
      _row("a", "ours:static", 999, 0.5),  # an older session: left out
      _row("b", "ours:static", 100, 0.80), _row("b", "ours:bucketed", 300,
                                                0.79),
      _row("b", "hf:static", 90, 0.80), _row("b", "hf:group_by_length", 200,
                                             0.80),
      dict(session="b", round=1, task="MRPC", setting="hf:dynamic",
           error="exit 1, see log")])
  assert len(rows) == 5
  text = compare.table(rows)
  assert "| MRPC | 1 | hf:dynamic | exit 1, see log |" in text
  # fed tokens/s after epoch 1: the first epoch (7 tokens in 1 s) left out
  assert "| 300 | 150 | 50 % | 600 |" in text
  assert ("ours best (ours:bucketed) / theirs best (hf:group_by_length): "
          "useful tokens/s 1.50x") in text
  assert "dev score -1.0 points" in text


def test_bucketed_w_passes_buckets_w_wordpieces_wide():
  assert compare.parse_settings("ours:bucketed/8+xla") == [
      "ours:bucketed/8+xla"]
  assert compare.batching_flags("bucketed/8", 64) == [
      "--bucket_by_length", "--bucket_boundaries=8,16,24,32,40,48,56,64"]
  assert compare.batching_flags("bucketed/48", 128)[1].endswith("=48,96,128")
  assert compare.batching_flags("bucketed", 128) == ["--bucket_by_length"]


def test_padding_counts_bucket_boundaries_and_top_ups():
  # Buckets 8 and 16 (17 is truncated to 16): [3, 5] fill one batch at 8;
  # [9, 10, 17] take two batches at 16, the second topped up.
  assert padding.bucketed([3, 5, 9, 10, 17], 16, 8, 2) == (8 * 2 + 16 * 4, 3)


def test_padding_steps_match_the_bucketing_pipeline():
  from keras_adapters.data import bucketing
  lengths = [3, 5, 9, 10, 16, 30, 31, 33, 64, 2, 7, 8]
  for width in (1, 4, 8):
    boundaries = bucketing.boundaries_for(64, list(range(width, 64, width)))
    assert padding.bucketed(lengths, 64, width, 4)[1] == (
        bucketing.steps_per_epoch(lengths, boundaries, 4))


def test_grouped_pads_each_sorted_batch_to_its_longest():
  # One megabatch, sorted longest first: batches (4, 3) and (2, 1).
  assert padding.grouped([1, 2, 3, 4], 2, seed=0) == (10, 4 * 2 + 2 * 2, 2)
  # The last partial batch is dropped, as the Trainer's DataLoader does.
  assert padding.grouped([5, 5, 5], 2, seed=0)[2] == 1
