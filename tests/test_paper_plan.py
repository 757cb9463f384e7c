"""benchmarks/paper: the plan's points, learning-rate resolution, the runner's
readiness order and the table, on made-up result rows (no training)."""

import sys

from harness import REPO

sys.path.insert(0, str(REPO / "benchmarks" / "paper"))
import plan  # pylint: disable=g-import-not-at-top,wrong-import-position
import run_plan  # pylint: disable=g-import-not-at-top,wrong-import-position
import table  # pylint: disable=g-import-not-at-top,wrong-import-position


def _row(task, method, lr, seed, score, init=plan.DEFAULT_INIT):
  p = plan.point(task, method, lr, seed, init)
  return dict(name=p["name"], task=task, method=method, lr=lr, seed=seed,
              init=init, command=f"python run_classifier.py # {p['name']}",
              metrics={f"eval_{k}": score for k in plan.TASKS[task][4]},
              trained_params=1, backbone_params=100)


def test_every_point_once_and_seed1_best_of_a_swept_method_dropped():
  points = plan.unique_points()
  keys = [(p["task"], p["method"], p["lr"], p["seed"], p["init"])
          for _, p in points]
  assert len(keys) == len(set(keys)) == 158
  for _, p in points:
    if p["lr"].startswith("best:") and p["seed"] == 1:
      assert p["method"] not in plan.SWEPT or p["init"] != plan.DEFAULT_INIT


def test_unswept_methods_take_the_rate_of_their_source():
  assert plan.lr_source("adapter8") == plan.lr_source("adapter1") == "adapter64"
  assert plan.lr_source("top1") == plan.lr_source("top6") == "top3"
  assert plan.lr_source("full") == "full" and plan.lr_source("ln") == "ln"
  for _, p in plan.unique_points():
    if p["lr"].startswith("best:"):
      assert p["lr"][5:] in plan.SWEPT


def test_points_wait_until_their_sweep_is_complete():
  rows = [_row("MRPC", "adapter64", "3e-4", 1, 0.7),
          _row("MRPC", "adapter64", "1e-3", 1, 0.8)]
  waiting = plan.point("MRPC", "adapter8", "best:adapter64", 1)
  assert run_plan.resolve(waiting, rows) is None
  rows.append(_row("MRPC", "adapter64", "3e-3", 1, 0.75))
  assert run_plan.resolve(waiting, rows)["name"] == "mrpc_adapter8_lr1e-3_s1"


def test_ready_points_skip_taken_names_and_keep_plan_order():
  ready, waiting = run_plan.ready_points([], set(), {"1"}, {"MRPC"})
  names = [p["name"] for _, p in ready]
  assert names[:3] == ["mrpc_adapter64_lr3e-4_s1", "mrpc_adapter64_lr1e-3_s1",
                       "mrpc_adapter64_lr3e-3_s1"]
  assert len(names) == 6 and waiting == 0
  ready, _ = run_plan.ready_points([], set(names[:2]), {"1"}, {"MRPC"})
  assert [p["name"] for _, p in ready] == names[2:]


def test_thread_settings_are_part_of_the_stored_command():
  assert run_plan.thread_env(1) == {}
  env = run_plan.thread_env(2)
  assert env["TF_NUM_INTEROP_THREADS"] == "1"
  assert int(env["TF_NUM_INTRAOP_THREADS"]) >= 1


def test_table_uses_the_best_rate_and_its_seeds():
  rows = [_row("MRPC", "adapter64", lr, 1, score) for lr, score in
          (("3e-4", 0.70), ("1e-3", 0.80), ("3e-3", 0.60))]
  rows += [_row("MRPC", "adapter64", "1e-3", 2, 0.90),
           _row("MRPC", "adapter8", "1e-3", 1, 0.50),
           _row("MRPC", "full", "2e-5", 1, 0.65)]
  text = table.table(rows)
  m64 = next(l for l in text.splitlines() if l.startswith("| Adapters (m=64)"))
  assert "85.0 ± 5.0" in m64 and "(n=2)" in m64 and "*" not in m64
  m8 = next(l for l in text.splitlines() if l.startswith("| Adapters (m=8)"))
  assert "50.0" in m8 and "*" not in m8  # at m=64's complete sweep's rate
  full = next(l for l in text.splitlines() if l.startswith("| Full"))
  assert full.count("*") == 1  # its sweep has 1 of 3 rates
