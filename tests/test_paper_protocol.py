"""benchmarks/paper/protocol.py: the selection over (size, epochs, rate) and
the goal check under the protocol run, on made-up result rows (no
training). Expected numbers are worked out by hand from the rows."""

import json
import sys

import pytest

from benchmarks.paper import plan
from benchmarks.paper import protocol
from benchmarks.paper import table


def _row(task, method, lr, seed, score, epochs=3, params=2, **extra):
  p = plan.point(task, method, lr, seed, epochs=epochs)
  return dict(name=p["name"], task=task, method=method, lr=lr, seed=seed,
              init=plan.DEFAULT_INIT, num_train_epochs=epochs,
              command=f"python run_classifier.py # {p['name']}",
              metrics={f"eval_{k}": score for k in plan.TASKS[task][4]},
              trained_params=params, backbone_params=100, wall_seconds=1,
              **extra)


def _cola():
  """CoLA: adapters best at 3 epochs 1e-3 (0.20, seeds 0.20/0.10/0.24),
  beaten by 20 epochs at 1e-3 (0.33); full best at 3 epochs 5e-5 (0.30,
  seeds 0.30/0.26), its 20-epoch run lower (0.29)."""
  return [_row("CoLA", "adapter64", "3e-4", 1, 0.05),
          _row("CoLA", "adapter64", "1e-3", 1, 0.20),
          _row("CoLA", "adapter64", "1e-3", 2, 0.10),
          _row("CoLA", "adapter64", "1e-3", 3, 0.24),
          _row("CoLA", "adapter64", "3e-3", 1, 0.0),
          _row("CoLA", "adapter8", "1e-3", 1, 0.15, params=1),
          _row("CoLA", "adapter64", "1e-3", 1, 0.33, epochs=20),
          _row("CoLA", "full", "2e-5", 1, 0.25, params=100),
          _row("CoLA", "full", "5e-5", 1, 0.30, params=100),
          _row("CoLA", "full", "5e-5", 2, 0.26, params=100),
          _row("CoLA", "full", "5e-5", 1, 0.29, epochs=20, params=100)]


def test_selection_takes_the_best_seed1_point_over_epochs_and_its_seeds():
  rows = _cola()
  best = protocol.Selection(rows, "CoLA", protocol.ADAPTERS)
  assert best.point == ("adapter64", 20, "1e-3")
  assert [r["seed"] for r in best.runs] == [1]
  three = protocol.Selection(rows, "CoLA", protocol.ADAPTERS, (3,))
  assert three.point == ("adapter64", 3, "1e-3")
  assert three.value("seed1") == pytest.approx(20.0)
  assert three.value("mean") == pytest.approx(18.0)
  assert three.value("best") == pytest.approx(24.0)
  full = protocol.Selection(rows, "CoLA", ("full",))
  assert full.point == ("full", 3, "5e-5")
  assert full.value("mean") == pytest.approx(28.0)


def test_ties_go_to_fewer_epochs_and_other_batching_or_init_stay_out():
  rows = [_row("RTE", "full", "5e-5", 1, 0.6),
          _row("RTE", "full", "5e-5", 1, 0.6, epochs=20),
          _row("RTE", "full", "1e-4", 1, 0.9, batching="bucketed"),
          dict(_row("RTE", "full", "2e-5", 1, 0.9), init="1e-2")]
  assert protocol.Selection(rows, "RTE", ("full",)).point == (
      "full", 3, "5e-5")
  assert not protocol.Selection(rows, "RTE", protocol.ADAPTERS)


def test_table_gives_both_gaps_the_protocol_and_a_goal_check_per_statistic():
  rows = _cola() + [_row("MRPC", "adapter8", "1e-3", 1, 0.80, params=1),
                    _row("MRPC", "full", "5e-5", 1, 0.81, params=100)]
  text = protocol.selection_table(rows)
  cola = next(l for l in text.splitlines() if l.startswith("| CoLA"))
  # 3 epochs only: 20.0 - 30.0; every epoch count: 33.0 - 30.0.
  assert cola.endswith("| -10.0 → +3.0 |")
  assert "| m=64, 20 ep, 1e-3 | 33.0 | 33.0 (n=1) | 33.0 |" in cola
  assert "| 3 ep, 5e-5 | 30.0 | 28.0 ± 2.0 (n=2) | 30.0 |" in cola
  assert ("- CoLA: adapters m=8 3 ep: 1e-3; m=64 3 ep: 3e-4 1e-3 3e-3; "
          "m=64 20 ep: 1e-3; full 3 ep: 2e-5 5e-5; 20 ep: 5e-5") in text
  goals = [l for l in text.splitlines() if l.startswith("- Goal check")]
  assert len(goals) == 3
  # seed 1: CoLA +3.0, MRPC -1.0 -> mean +1.0, worst MRPC; adapters train
  # 2 % (CoLA m=64) and 1 % (MRPC m=8) -> 1.50 %.
  assert ("(seed 1, 2 tasks): adapters − full = +1.0 points on the mean "
          "(goal ≥ -0.5), worst task MRPC -1.0 (goal ≥ -2.0), 1.50 % of the "
          "backbone trained per task (goal ≤ 2.5 %): met.") in goals[0]
  # mean over seeds: CoLA 33.0 - 28.0 = +5.0, MRPC -1.0 -> +2.0.
  assert "(mean over seeds, 2 tasks): adapters − full = +2.0" in goals[1]
  rows.append(_row("MRPC", "full", "1e-4", 1, 0.84, params=100))
  goals = protocol.selection_table(rows).splitlines()[-3:]
  assert "worst task MRPC -4.0 (goal ≥ -2.0)" in goals[0]
  assert goals[0].endswith(": not met.")


def test_no_pair_of_methods_gives_no_section():
  assert protocol.selection_table(
      [_row("MRPC", "adapter64", "1e-3", 1, 0.8)]) == ""


def test_table_main_puts_the_selection_into_the_doc(tmp_path, monkeypatch):
  results = tmp_path / "paper.jsonl"
  results.write_text("".join(json.dumps(r) + "\n"
                             for r in _cola()))
  doc = tmp_path / "RESULTS.md"
  doc.write_text(f"intro\n{table.BEGIN}\nold\n{table.END}\noutro\n")
  monkeypatch.setattr(sys, "argv", ["table.py", str(results), "--doc",
                                    str(doc), "--out",
                                    str(tmp_path / "t.md")])
  table.main()
  text = doc.read_text()
  assert text.index("Goal check: adapters (best m)") < text.index(
      "Selected over every epoch count run") < text.index(
          "- Goal check (seed 1, 1 tasks)") < text.index(
              "| CoLA | adapter64 | 1e-3 | 1 | 20 | 33.0 | 20.0 |") < text.index(
                  table.END)
  assert "Runs behind each cell" not in text
  assert "Selected over every epoch count run" in (tmp_path / "t.md").read_text()


def test_held_out_seeds_judge_the_point_seed_1_chose_without_seed_1():
  """Adapters: seed 1 picks 20 epochs at 1e-3 (0.33, among 5 seed-1
  points), whose seeds 2-3 score 0.20 and 0.24: held-out 22.0 ± 2.0; full:
  seed 1 picks 3 epochs 5e-5 (among 3), seed 2 alone: 26.0. Pfeiffer: one
  3-epoch run, no other seed yet: waiting."""
  rows = _cola() + [
      _row("CoLA", "adapter64", "1e-3", 2, 0.20, epochs=20),
      _row("CoLA", "adapter64", "1e-3", 3, 0.24, epochs=20),
      _row("CoLA", "pfeiffer64", "1e-3", 1, 0.21, params=1)]
  text = protocol.held_out_table(rows)
  (line,) = [l for l in text.splitlines() if l.startswith("| CoLA")]
  assert line == ("| CoLA | 22.0 ± 2.0 (n=2) (5) | waiting (1) | "
                  "26.0 (n=1) (3) | -4.0 | - |")
  assert ("- Goal check (held-out seeds, adapters (best m), 1 of 1 tasks): "
          "adapters − full = -4.0 points on the mean") in text
  assert "2.00 % of the backbone trained per task" in text
  assert ("- Goal check (held-out seeds, Pfeiffer m=64): waiting for seeds "
          "2-3 on CoLA; 1.00 % of the backbone") in text
