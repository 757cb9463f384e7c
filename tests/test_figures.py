"""benchmarks/figures.py: which runs each point is made of, and the PNGs, on
made-up result rows (no training)."""

import argparse
import json

import pytest

from benchmarks import figures
from benchmarks.paper import plan


def _row(task, method, lr, seed, score, params, init=plan.DEFAULT_INIT):
  return dict(task=task, method=method, lr=lr, seed=seed, init=init,
              metrics={f"eval_{k}": score for k in plan.TASKS[task][4]},
              trained_params=params, backbone_params=1000)


def _write(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


def _rows():
  rows = [_row("MRPC", "adapter64", lr, 1, score, 64)
          for lr, score in (("3e-4", 0.70), ("1e-3", 0.80), ("3e-3", 0.75))]
  rows += [_row("MRPC", "adapter64", "1e-3", s, 0.82, 64) for s in (2, 3)]
  # m = 8 at the m = 64 best rate (two seeds), and a stray run at another rate.
  rows += [_row("MRPC", "adapter8", "1e-3", 1, 0.60, 8),
           _row("MRPC", "adapter8", "1e-3", 2, 0.62, 8),
           _row("MRPC", "adapter8", "3e-3", 1, 0.99, 8)]
  return rows


def test_points_are_the_seed_mean_at_the_source_sweeps_best_rate():
  rows = _rows()
  lr, partial = figures._best_or_partial(rows, "MRPC", "adapter64")
  assert (lr, partial) == ("1e-3", False)
  points = figures._points(rows, "MRPC", ["adapter8", "adapter64"], lr)
  (p8, mean8, sem8, m8), (p64, mean64, _, _) = points
  assert (p8, m8, p64) == (8, "adapter8", 64)
  assert mean8 == pytest.approx(61.0) and sem8 == pytest.approx(1.0)
  assert mean64 == pytest.approx(100 * (0.80 + 0.82 + 0.82) / 3)


def test_an_incomplete_sweep_gives_its_best_so_far_flagged():
  rows = _rows()[:2]
  assert figures._best_or_partial(rows, "MRPC", "adapter64") == ("1e-3", True)
  assert figures._best_or_partial(rows, "MRPC", "full") == (None, True)


def test_tradeoff_and_init_write_pngs(tmp_path):
  rows = _rows() + [_row("MRPC", "adapter64", "1e-3", 1, 0.5, 64, init="1")]
  results = _write(tmp_path / "paper.jsonl", rows)
  for name, fn in (("tradeoff", figures.tradeoff), ("init", figures.init)):
    out = tmp_path / f"{name}.png"
    fn(argparse.Namespace(results=results, out=str(out)))
    assert out.read_bytes()[:4] == b"\x89PNG"
  assert not list(tmp_path.glob("*.tmp.png"))


def test_no_runs_is_a_one_line_error_naming_the_block(tmp_path):
  results = _write(tmp_path / "paper.jsonl",
                   [_row("RTE", "adapter64", "1e-3", 1, 0.5, 64)])
  with pytest.raises(SystemExit, match="--blocks 6"):
    figures.tradeoff(argparse.Namespace(results=results, out=None))
  with pytest.raises(SystemExit, match="--blocks 7"):
    figures.init(argparse.Namespace(results=results, out=None))


def test_curves_plot_the_long_runs_and_need_one(tmp_path):
  rows = _rows()
  results = _write(tmp_path / "paper.jsonl", rows)
  with pytest.raises(SystemExit, match="--blocks 8"):
    figures.curves(argparse.Namespace(results=results, out=None))
  rows = [dict(_row("MRPC", "adapter64", "1e-3", 1, 0.1, 64),
               batching="bucketed"),
          _row("MRPC", "adapter64", "1e-3", 1, 0.2, 64, init="1e-2")] + rows
  long_run = dict(_row("MRPC", "adapter64", "1e-3", 1, 0.85, 64),
                  num_train_epochs=20,
                  dev_curve=[dict(epoch=e, eval_accuracy=0.8, eval_f1=0.9)
                             for e in (1, 2)])
  results = _write(tmp_path / "paper.jsonl", rows + [long_run])
  ((run, epochs, scores, short),) = figures.curve_series(
      rows + [long_run], "MRPC")
  assert run is long_run and epochs == [1, 2]
  assert scores == pytest.approx([85.0, 85.0])  # MRPC: mean of acc and F1
  # The same rate, seed and init at 3 epochs: not the bucketed run, another
  # init, or seeds 2/3.
  assert short is rows[3]
  out = tmp_path / "curves.png"
  figures.curves(argparse.Namespace(results=results, out=str(out)))
  assert out.read_bytes()[:4] == b"\x89PNG"


def test_ablation_of_an_unknown_pack_is_a_one_line_error(tmp_path):
  line = dict(adapter_pack="a.npz", task="mrpc", adapter_size=64, layers=1,
              dev_examples=4, score_keys=["accuracy"],
              baseline={"accuracy": 0.8}, all_removed={"accuracy": 0.4},
              spans=[dict(first=0, last=0, metrics={"accuracy": 0.6})])
  results = _write(tmp_path / "ablation.jsonl", [line])
  out = tmp_path / "ablation.png"
  figures.ablation(argparse.Namespace(results=results, out=str(out),
                                      pack="a.npz"))
  assert out.read_bytes()[:4] == b"\x89PNG"
  with pytest.raises(SystemExit, match="no ablation of b.npz"):
    figures.ablation(argparse.Namespace(results=results, out=None,
                                        pack="b.npz"))
