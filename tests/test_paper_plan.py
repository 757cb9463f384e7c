"""benchmarks/paper: the plan's points, learning-rate resolution, the runner's
readiness order and the table, on made-up result rows (no training)."""

import json
import sys
import time

import pytest

from harness import REPO
from benchmarks.paper import plan
from benchmarks.paper import reproduce
from benchmarks.paper import run_plan
from benchmarks.paper import table


def _row(task, method, lr, seed, score, init=plan.DEFAULT_INIT):
  p = plan.point(task, method, lr, seed, init)
  return dict(name=p["name"], task=task, method=method, lr=lr, seed=seed,
              init=init, command=f"python run_classifier.py # {p['name']}",
              metrics={f"eval_{k}": score for k in plan.TASKS[task][4]},
              trained_params=1, backbone_params=100)


def test_every_point_once_and_seed1_best_of_a_swept_method_dropped():
  points = plan.unique_points()
  keys = [(p["task"], p["method"], p["lr"], p["seed"], p["init"],
           p["epochs"], p["batching"]) for _, p in points]
  assert len(keys) == len(set(keys)) == 249
  # Blocks 1-9 had 166 points; block 13 sweeps m=8 and so takes over block
  # 3's 4 seed-1 m=8 points (one rate of its grid).
  assert sum(not block.startswith(("8_", "10_", "11_", "12_", "13_", "14_",
                                   "15_", "16_", "17_", "18_", "19_", "20_"))
             for block, _ in points) == 162
  # Block 20: k = 2, 3 on the five tasks at 3 epochs, CoLA/RTE at 20.
  drop = [p for block, p in points if block == "20_adapterdrop"]
  assert len(drop) == 2 * 5 + 2 * 2
  assert "--leave_out=0,1,2 --trunk_cache --deterministic" in plan.command(
      drop[1], "1e-3", "out")
  # Block 14: Pfeiffer m=64 on the 4 small tasks, at m=64's best rate.
  pfeiffer = [p for block, p in points if block == "14_pfeiffer"]
  assert [(p["task"], p["method"], p["lr"]) for p in pfeiffer] == [
      (t, "pfeiffer64", "best:adapter64") for t in plan.SMALL_TASKS]
  assert "--adapter_type=pfeiffer --deterministic" in plan.command(
      pfeiffer[0], "1e-3", "out")
  # Block 15: the same for parallel adapters.
  parallel = [p for block, p in points if block == "15_parallel"]
  assert [(p["task"], p["method"], p["lr"]) for p in parallel] == [
      (t, "parallel64", "best:adapter64") for t in plan.SMALL_TASKS]
  assert "--adapter_type=parallel --deterministic" in plan.command(
      parallel[0], "1e-3", "out")
  # Block 9: MRPC's dynamic-padding seeds are block 1/2's runs; new are the
  # 6 bucketed runs and SST-2's dynamic seeds 2-3.
  assert sum(block == "9_bucketing" for block, _ in points) == 8
  for _, p in points:
    if p["lr"].startswith("best:") and p["seed"] == 1:
      assert (p["method"] not in plan.SWEPT or
              p["init"] != plan.DEFAULT_INIT or p["epochs"] == 20 or
              p["batching"] == "bucketed")


def test_fusion_points_fuse_block_14s_packs_once_those_runs_are_in():
  (fusion,) = [p for block, p in plan.unique_points()
               if block == "16_fusion" and p["task"] == "RTE"]
  assert (fusion["method"], fusion["lr"]) == ("fusion_pfeiffer64", "5e-5")
  rows = [_row(t, "adapter64", lr, 1, score)
          for t in plan.SMALL_TASKS
          for lr, score in (("3e-4", 0.5), ("1e-3", 0.7), ("3e-3", 0.6))]
  assert run_plan.resolve(fusion, rows) is None  # no Pfeiffer runs yet
  rows += [_row(t, "pfeiffer64", "1e-3", 1, 0.6) for t in plan.SMALL_TASKS[:3]]
  assert run_plan.resolve(fusion, rows) is None  # CoLA's is missing
  rows.append(_row("CoLA", "pfeiffer64", "1e-3", 1, 0.6))
  resolved = run_plan.resolve(fusion, rows)
  assert resolved["name"] == "rte_fusion_pfeiffer64_lr5e-5_s1"
  packs = [f"{plan.OUT}/{t}_pfeiffer64_lr1e-3_s1/adapter_pack.npz"
           for t in ("mrpc", "rte", "stsb", "cola")]
  assert resolved["fuse_packs"] == packs
  command = plan.command(resolved, resolved["lr"], "out")
  assert ("--fine_tune_mode=fusion --fuse_packs=" + ",".join(packs)) in command
  assert run_plan.missing_packs(resolved) == [
      p for p in packs if not (REPO / p).exists()]


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
  ready, _ = run_plan.ready_points([], set(), {"1"}, {"MRPC"},
                                   ("*_lr1e-3_s1", "mrpc_full_lr5e-5_s1"))
  assert [p["name"] for _, p in ready] == ["mrpc_adapter64_lr1e-3_s1",
                                           "mrpc_full_lr5e-5_s1"]


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


def test_cells_without_runs_say_whether_a_plan_block_trains_them():
  rows = [_row(t, "adapter64", "1e-3", 1, 0.8) for t in ("MRPC", "RTE",
                                                          "SST-2")]
  rows.append(_row("MRPC", "parallel64", "1e-3", 1, 0.8))
  text = table.table(rows)
  parallel = next(l for l in text.splitlines()
                  if l.startswith("| Adapters, parallel"))
  # Block 15 trains parallel m=64 on RTE; no block trains it on SST-2.
  assert parallel.split(" | ")[2:4] == ["planned", "not run"]
  assert "pending" not in text


def test_goal_check_compares_on_the_tasks_both_rows_have():
  rows = []
  for task in ("MRPC", "RTE"):
    rows += [_row(task, "adapter64", lr, 1, score) for lr, score in
             (("3e-4", 0.5), ("1e-3", 0.7), ("3e-3", 0.6))]
    rows += [_row(task, "full", lr, 1, 0.8) for lr in ("2e-5", "5e-5", "1e-4")]
  rows.append(_row("STS-B", "adapter64", "1e-3", 1, 0.9))  # no full row yet
  goal = next(l for l in table.table(rows).splitlines()
              if l.startswith("Goal check"))
  assert "on the 2 tasks both rows have: MRPC, RTE" in goal
  assert "= -10.0 points" in goal and "train 1.00 %" in goal


def test_doc_gets_the_table_between_its_markers_only(tmp_path):
  doc = tmp_path / "RESULTS.md"
  doc.write_text(f"intro\n{table.BEGIN}\nold table\n{table.END}\noutro\n")
  table.write_into(str(doc), "| new |\n| table |")
  assert doc.read_text() == (f"intro\n{table.BEGIN}\n| new |\n| table |\n"
                             f"{table.END}\noutro\n")
  doc.write_text(f"{table.END}\n{table.BEGIN}\n")
  with pytest.raises(SystemExit, match="below it"):
    table.write_into(str(doc), "x")
  assert doc.read_text() == f"{table.END}\n{table.BEGIN}\n"  # untouched


def test_out_written_whole_or_not_at_all(tmp_path, monkeypatch):
  results = tmp_path / "paper.jsonl"
  results.write_text(json.dumps(dict(
      _row("MRPC", "adapter64", "1e-3", 1, 0.8), wall_seconds=60)) + "\n")
  out, doc = tmp_path / "table.md", tmp_path / "RESULTS.md"
  out.write_text("previous table\n")
  doc.write_text("no markers\n")
  argv = ["table.py", str(results), "--doc", str(doc), "--out", str(out)]
  monkeypatch.setattr(sys, "argv", argv)
  with pytest.raises(SystemExit, match="needs one line"):
    table.main()
  assert out.read_text() == "previous table\n"  # not emptied, as `>` would
  doc.write_text(f"{table.BEGIN}\n{table.END}\n")
  table.main()
  assert "| Adapters (m=64) |" in out.read_text()
  assert "Runs behind each cell" in out.read_text()
  assert "| Adapters (m=64) |" in doc.read_text()
  monkeypatch.setattr(sys, "argv", argv[:2] + ["--out", str(tmp_path / "no/t")])
  with pytest.raises(SystemExit, match="directory does not exist"):
    table.main()



def test_failed_write_leaves_no_tmp_and_target_untouched(tmp_path,
                                                         monkeypatch):
  out = tmp_path / "table.md"
  out.write_text("previous table\n")
  def disk_full(src, dst):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(table.os, "replace", disk_full)
  with pytest.raises(OSError, match="No space"):
    table.write_atomically(str(out), "new table\n")
  assert out.read_text() == "previous table\n"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]

# Stands in for the venv's python: writes eval_results.txt (and with
# --eval_every_epochs a one-line dev_curve.jsonl) into the last --output_dir,
# the accuracy taken from the thread setting it was given.
_FAKE_DRIVER = """#!/bin/sh
for a in "$@"; do case $a in --output_dir=*) out=${a#--output_dir=};;
  --eval_every_epochs=*) curve=1;; esac; done
mkdir -p "$out"
printf 'eval_accuracy = 0.%s\\nglobal_step = 3.0\\n' "$TF_NUM_INTRAOP_THREADS" \\
  > "$out/eval_results.txt"
[ -z "$curve" ] || printf '{"epoch": 1, "step": 3, "eval_accuracy": 0.%s}\\n' \\
  "$TF_NUM_INTRAOP_THREADS" > "$out/dev_curve.jsonl"
"""


@pytest.fixture
def fake(tmp_path):
  """A stand-in python (_FAKE_DRIVER) for the runner and reproduce.py."""
  path = tmp_path / "python"
  path.write_text(_FAKE_DRIVER)
  path.chmod(0o755)
  return path


def _first_two_rte_points(tmp_path, monkeypatch):
  """Block 1's first two RTE points, with plan.OUT under tmp_path."""
  monkeypatch.setattr(plan, "OUT", str(tmp_path / "runs"))
  return [p["name"] for _, p in
          run_plan.ready_points([], set(), {"1"}, {"RTE"})[0][:2]]


def test_reproduce_reruns_the_stored_command_in_a_fresh_directory(tmp_path,
                                                                  fake):
  row = _row("RTE", "adapter64", "1e-3", 1, 0.1)
  row.update(metrics=dict(eval_accuracy=0.1, global_step=3.0), resumed=False,
             wall_seconds=5, finished="2026-11-20T00:00:00",
             command="TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 "
             "python run_classifier.py --task_name=RTE "
             "--output_dir=runs/paper/x")
  results, repro = tmp_path / "paper.jsonl", tmp_path / "repro.jsonl"
  results.write_text(json.dumps(row) + "\n")
  argv = [row["name"], f"--results={results}", f"--python={fake}",
          f"--out={tmp_path / 'repro'}", f"--repro_results={repro}"]
  reproduce.main(argv)
  line = json.loads(repro.read_text())
  assert line["equal"] and line["rerun"] == row["metrics"]
  assert line["env"] == {"TF_NUM_INTRAOP_THREADS": "1",
                         "TF_NUM_INTEROP_THREADS": "1"}
  assert (tmp_path / "repro" / row["name"] / "eval_results.txt").exists()
  row["metrics"]["eval_accuracy"] = 0.2
  results.write_text(json.dumps(row) + "\n")
  reproduce.main(argv)
  assert not json.loads(repro.read_text().splitlines()[1])["equal"]
  assert run_plan.load_results(results) == [row]  # no --replace: kept
  row["resumed"] = True
  other = _row("RTE", "adapter64", "3e-4", 1, 0.5)
  results.write_text(json.dumps(row) + "\n" + json.dumps(other) + "\n")
  reproduce.main(argv + ["--replace"])
  replaced, kept = run_plan.load_results(results)
  assert replaced["metrics"] == dict(eval_accuracy=0.1, global_step=3.0)
  assert replaced["replaced"]["metrics"]["eval_accuracy"] == 0.2
  assert replaced["replaced"]["resumed"] and not replaced["resumed"]
  assert kept == other
  reproduce.main(argv + ["--replace"])  # now equal: nothing to replace
  assert json.loads(repro.read_text().splitlines()[-1])["equal"]


def _start(p, jobs, fake, extra=""):
  args = type("Args", (), dict(jobs=jobs, extra=extra, python=str(fake)))
  run = run_plan.start_point(p, "1_sweep_main", args)
  run["process"].wait()
  run["log"].close()
  return run


def test_a_resumed_run_keeps_the_command_it_started_with(tmp_path, fake,
                                                         monkeypatch):
  monkeypatch.setattr(plan, "OUT", str(tmp_path))
  p = plan.point("RTE", "adapter64", "1e-3", 1, plan.DEFAULT_INIT)
  first = _start(p, 2, fake)
  assert first["command"].startswith("TF_NUM_INTRAOP_THREADS=")
  assert first["command"].endswith(" --deterministic")
  assert (tmp_path / p["name"] / "eval_results.txt").read_text().startswith(
      "eval_accuracy = 0.1\n")  # the stored threads reached the driver
  (tmp_path / p["name"] / "checkpoints").mkdir(parents=True)  # killed
  # Resumed by a runner with other --jobs and --extra: the same command.
  resumed = _start(p, 1, fake, extra="--num_train_epochs=1")
  assert resumed["resumed"]
  assert resumed["command"] == first["command"]


def test_a_point_another_live_runner_holds_is_skipped(tmp_path, fake,
                                                      monkeypatch):
  import subprocess  # pylint: disable=g-import-not-at-top
  first, second = _first_two_rte_points(tmp_path, monkeypatch)
  # A live "runner": it waits on its stdin, so it lives until killed below
  # however long the test takes (no timer).
  other = subprocess.Popen([sys.executable, "-c",
                            "import sys; sys.stdin.read()"],
                           stdin=subprocess.PIPE)
  try:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f"{first}.lock").write_text(str(other.pid))
    results = tmp_path / "paper.jsonl"
    monkeypatch.setattr(sys, "argv", [
        "run_plan.py", "--blocks=1", "--tasks=RTE", "--max_runs=1",
        f"--python={fake}", f"--results={results}"])
    run_plan.main()
  finally:
    other.kill()
    other.wait()
  assert [r["name"] for r in run_plan.load_results(results)] == [second]
  assert not (tmp_path / "runs" / f"{second}.lock").exists()  # released
  # Its holder gone, the lock is stale: the next runner takes the point.
  run_plan.main()
  assert [r["name"] for r in run_plan.load_results(results)] == [second,
                                                                 first]


def test_expected_time_scales_the_estimate_by_measured_runs():
  p = plan.point("MRPC", "adapter64", "1e-3", 1)
  estimate = plan.estimated_seconds(p)
  rows = [dict(_row("MRPC", "adapter64", lr, 1, 0.5), jobs=2, resumed=False,
               wall_seconds=int(estimate * ratio))
          for lr, ratio in (("3e-4", 2), ("1e-3", 3), ("3e-3", 2.5))]
  rows.append(dict(rows[0], jobs=1, wall_seconds=int(estimate * 9)))
  rows.append(dict(rows[0], resumed=True, wall_seconds=int(estimate * 9)))
  assert abs(run_plan.expected_seconds(p, rows, 2) / estimate - 2.5) < 0.01
  for day, r in enumerate(rows[:3]):
    r["finished"] = f"2026-11-0{day + 1}"
  # Only the last 2 finished count: ratios 3 and 2.5, the upper median 3.
  ratio = run_plan.expected_seconds(p, rows, 2, recent=2) / estimate
  assert abs(ratio - 3) < 0.01
  assert run_plan.expected_seconds(p, [], 2) == estimate


def test_stop_by_is_the_nearest_such_time_of_day():
  now = time.mktime((2026, 11, 24, 3, 0, 0, 0, 0, -1))
  assert run_plan.parse_stop_by("05:40", now) - now == 160 * 60
  assert run_plan.parse_stop_by("02:00", now) - now == -3600  # passed
  late = time.mktime((2026, 11, 24, 23, 0, 0, 0, 0, -1))
  assert run_plan.parse_stop_by("01:30", late) - late == 150 * 60
  with pytest.raises(ValueError):
    run_plan.parse_stop_by("25:00", now)


def test_a_run_that_cannot_end_before_stop_by_is_not_started(tmp_path, fake,
                                                             monkeypatch):
  first, second = _first_two_rte_points(tmp_path, monkeypatch)
  monkeypatch.setattr(run_plan, "parse_stop_by",
                      lambda text: time.time() + 3600)
  monkeypatch.setattr(run_plan, "expected_seconds",
                      lambda p, rows, jobs: 7200 if p["name"] == first else 60)
  results = tmp_path / "paper.jsonl"
  monkeypatch.setattr(sys, "argv", [
      "run_plan.py", "--blocks=1", "--tasks=RTE", "--max_runs=1",
      "--stop_by=05:40", f"--python={fake}", f"--results={results}"])
  run_plan.main()
  assert [r["name"] for r in run_plan.load_results(results)] == [second]


# --- the 20-epoch probe (issue #27) -----------------------------------------

def _sweeps(task, adapter_scores, full_scores):
  return ([_row(task, "adapter64", lr, 1, score) for lr, score in
           zip(plan.LR_GRID["adapter"], adapter_scores)] +
          [_row(task, "full", lr, 1, score) for lr, score in
           zip(plan.LR_GRID["full"], full_scores)])


def test_old_names_stay_and_other_epochs_are_in_the_name():
  assert plan.point("CoLA", "full", "5e-5", 1)["name"] == "cola_full_lr5e-5_s1"
  assert plan.point("CoLA", "full", "5e-5", 1, epochs=3)["name"] == (
      "cola_full_lr5e-5_s1")
  p = plan.point("CoLA", "full", "5e-5", 1, epochs=20, eval_every=1)
  assert p["name"] == "cola_full_lr5e-5_s1_ep20"
  command = plan.command(p, "5e-5", "out")
  assert "--num_train_epochs=20 " in command
  assert command.endswith(" --eval_every_epochs=1 --deterministic")
  assert "eval_every" not in plan.command(plan.point("CoLA", "full", "5e-5", 1),
                                          "5e-5", "out")
  assert plan.estimated_seconds(p) > 6.5 * (
      plan.estimated_seconds(plan.point("CoLA", "full", "5e-5", 1)) -
      plan.RUN_OVERHEAD_SECONDS)


def test_probe_runs_cola_first_at_the_best_and_the_next_lower_rate():
  # CoLA: adapters best at 1e-3, full at 5e-5; RTE: both at the grid's top
  # and bottom, so "below" of a bottom rate is that run again.
  rows = (_sweeps("CoLA", (0.2, 0.3, 0.0), (0.1, 0.3, 0.2)) +
          _sweeps("RTE", (0.5, 0.5, 0.6), (0.6, 0.5, 0.5)))
  ready, waiting = run_plan.ready_points(rows, set(), {"8"}, set())
  assert waiting == 0
  assert [p["name"] for _, p in ready] == [
      "cola_adapter64_lr1e-3_s1_ep20", "cola_full_lr5e-5_s1_ep20",
      "cola_adapter64_lr3e-4_s1_ep20", "cola_full_lr2e-5_s1_ep20",
      "rte_adapter64_lr3e-3_s1_ep20", "rte_full_lr2e-5_s1_ep20",
      "rte_adapter64_lr1e-3_s1_ep20"]
  assert all(p["epochs"] == 20 and p["eval_every"] == 1 for _, p in ready)
  # The plan's 3-epoch rows are all done: blocks 1-7 have nothing to add.
  ready, _ = run_plan.ready_points(rows, {r["name"] for r in rows}, {"1"},
                                   {"CoLA", "RTE"})
  assert ready == []


def _long(task, method, lr, score, seed=1):
  row = _row(task, method, lr, seed, score)
  return dict(row, name=row["name"] + "_ep20", num_train_epochs=20)


def test_seeds_follow_the_selection_over_3_and_20_epochs():
  # CoLA adapters: best 1e-3 at 3 epochs (0.3), 0.4 at 20 epochs 3e-4;
  # full: best 5e-5 at 3 epochs (0.3), its 20-epoch runs lower.
  rows = _sweeps("CoLA", (0.2, 0.3, 0.0), (0.1, 0.3, 0.2))
  rows += [_long("CoLA", "adapter64", "1e-3", 0.35)]
  ready, waiting = run_plan.ready_points(rows, set(), {"10"}, {"CoLA"})
  assert (ready, waiting) == ([], 4)  # 3e-4 (below) and full's not in yet
  rows += [_long("CoLA", "adapter64", "3e-4", 0.4),
           _long("CoLA", "full", "5e-5", 0.25),
           _long("CoLA", "full", "2e-5", 0.3)]  # a tie: 3 epochs win
  assert run_plan.selected_point(rows, "CoLA", "adapter64", 20) == (20, "3e-4")
  assert run_plan.selected_point(rows, "CoLA", "full", 20) == (3, "5e-5")
  ready, waiting = run_plan.ready_points(rows, set(), {"10"}, {"CoLA"})
  assert waiting == 0
  assert [(p["name"], p["eval_every"]) for _, p in ready] == [
      ("cola_adapter64_lr3e-4_s2_ep20", 1), ("cola_adapter64_lr3e-4_s3_ep20", 1),
      ("cola_full_lr5e-5_s2", 0), ("cola_full_lr5e-5_s3", 0)]
  # Block 2 trained full's seeds 2-3 at 3 epochs: nothing new to run.
  done = {"cola_full_lr5e-5_s2", "cola_full_lr5e-5_s3"}
  ready, _ = run_plan.ready_points(rows, done, {"10"}, {"CoLA"})
  assert [p["name"] for _, p in ready] == [
      "cola_adapter64_lr3e-4_s2_ep20", "cola_adapter64_lr3e-4_s3_ep20"]


def test_pfeiffer_seeds_follow_its_own_selection_at_the_m64_rates():
  # Pfeiffer trains at adapters m=64's rates: its one 3-epoch run at m=64's
  # best (1e-3) and its 20-epoch probe at 1e-3 and the rate below (3e-4).
  rows = _sweeps("CoLA", (0.2, 0.3, 0.0), (0.1, 0.3, 0.2))
  rows.append(_row("CoLA", "pfeiffer64", "1e-3", 1, 0.3))
  ready, _ = run_plan.ready_points(rows, set(), {"18"}, {"CoLA"})
  assert [p["name"] for _, p in ready] == [
      "cola_pfeiffer64_lr1e-3_s1_ep20", "cola_pfeiffer64_lr3e-4_s1_ep20"]
  rows.append(_long("CoLA", "pfeiffer64", "1e-3", 0.25))
  assert run_plan.selected_point(rows, "CoLA", "pfeiffer64", 20) is None
  rows.append(_long("CoLA", "pfeiffer64", "3e-4", 0.35))
  assert run_plan.selected_point(rows, "CoLA", "pfeiffer64", 20) == (
      20, "3e-4")
  done = {r["name"] for r in rows}
  ready, _ = run_plan.ready_points(rows, done, {"18"}, {"CoLA"})
  assert [p["name"] for _, p in ready] == [
      "cola_pfeiffer64_lr3e-4_s2_ep20", "cola_pfeiffer64_lr3e-4_s3_ep20"]


def test_long_runs_stay_out_of_rate_selection_and_the_table():
  rows = _sweeps("CoLA", (0.2, 0.3, 0.0), (0.1, 0.3, 0.2))
  before = table.table(rows)
  long_run = dict(_row("CoLA", "adapter64", "3e-3", 1, 0.9),
                  name="cola_adapter64_lr3e-3_s1_ep20", num_train_epochs=20,
                  dev_curve=[dict(epoch=1, step=267, eval_matthews_corr=0.5),
                             dict(epoch=2, step=534, eval_matthews_corr=0.9)])
  rows.append(long_run)
  assert run_plan.best_lr(rows, "CoLA", "adapter64") == "1e-3"
  assert table.table(rows) == before
  text = table.long_runs_table(rows)
  assert "| CoLA | adapter64 | 3e-3 | 1 | 20 | 90.0 | 0.0 |" in text
  assert "best 90.0 @ epoch 2, last 90.0; 50.0 90.0" in text
  assert table.long_runs_table(rows[:-1]) == ""


def test_bucketed_runs_stay_out_of_rate_selection_and_the_table():
  """Block 9's --bucket_by_length rows share task, method, rate and seed
  with the protocol's rows; they must not replace them."""
  rows = _sweeps("CoLA", (0.2, 0.3, 0.0), (0.1, 0.3, 0.2))
  before = table.table(rows)
  bucketed = [dict(_row("CoLA", "adapter64", lr, 1, score),
                   name=f"cola_adapter64_lr{lr}_s1_bucketed",
                   batching="bucketed")
              for lr, score in (("3e-3", 0.9), ("1e-3", 0.0))]
  rows += bucketed
  assert run_plan.best_lr(rows, "CoLA", "adapter64") == "1e-3"
  assert table.table(rows) == before


def test_bucketing_table_sets_each_seed_beside_its_dynamic_run():
  rows = [_row("SST-2", "adapter64", "1e-3", seed, score) for seed, score in
          ((1, 0.80), (2, 0.90), (3, 0.85))]
  rows.append(dict(_row("SST-2", "adapter64", "1e-3", 1, 0.5),
                   init="1e-2"))  # another init: not a counterpart
  assert table.bucketing_table(rows) == ""
  rows += [dict(_row("SST-2", "adapter64", "1e-3", seed, score),
                batching="bucketed") for seed, score in ((1, 0.81), (2, 0.87))]
  text = table.bucketing_table(rows)
  assert ("| SST-2 | adapter64 | 1e-3 | accuracy | 80.0 90.0 85.0 "
          "(85.0 ± 2.9) | 81.0 87.0 (84.0 ± 3.0) | -1.0 |") in text


def test_one_job_can_run_on_one_thread_and_be_timed_by_one_thread_runs():
  assert run_plan.thread_env(1, 1) == dict(TF_NUM_INTRAOP_THREADS="1",
                                           TF_NUM_INTEROP_THREADS="1")
  assert run_plan.thread_env(2, 1) == run_plan.thread_env(1, 1)
  p = plan.point("MRPC", "adapter64", "1e-3", 1)
  estimate = plan.estimated_seconds(p)
  one = dict(_row("MRPC", "adapter64", "3e-4", 1, 0.5), jobs=2,
             resumed=False, wall_seconds=int(estimate * 2),
             command="TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 "
             "python run_classifier.py")
  two = dict(one, jobs=1, wall_seconds=int(estimate),
             command="python run_classifier.py")
  ratio = run_plan.expected_seconds(p, [one, two], 1, threads=1) / estimate
  assert abs(ratio - 2) < 0.01
  assert abs(run_plan.expected_seconds(p, [one, two], 1) / estimate - 1) < 0.01


def test_the_row_keeps_the_runs_dev_curve(tmp_path, fake, monkeypatch):
  monkeypatch.setattr(plan, "OUT", str(tmp_path))
  p = plan.point("RTE", "adapter64", "1e-3", 1, epochs=20, eval_every=1)
  args = type("Args", (), dict(jobs=1, threads=1, extra="", python=str(fake),
                               results=str(tmp_path / "paper.jsonl"),
                               keep_checkpoints=False))
  run = run_plan.start_point(p, "8_probe_20ep", args)
  run["process"].wait()
  assert run["command"].startswith("TF_NUM_INTRAOP_THREADS=1 ")
  curve = [dict(epoch=1, step=77, eval_accuracy=0.5)]
  (tmp_path / p["name"] / "dev_curve.jsonl").write_text(
      json.dumps(curve[0]) + "\n")
  row = run_plan.finish_point(run, args)
  assert row["dev_curve"] == curve and row["num_train_epochs"] == 20
  assert run_plan.load_results(args.results) == [row]


def test_reproduce_compares_the_dev_curve_too(tmp_path, fake):
  row = dict(_row("RTE", "adapter64", "1e-3", 1, 0.1), resumed=False,
             metrics=dict(eval_accuracy=0.1, global_step=3.0),
             dev_curve=[dict(epoch=1, step=3, eval_accuracy=0.1)],
             command="TF_NUM_INTRAOP_THREADS=1 python run_classifier.py "
             "--task_name=RTE --eval_every_epochs=1")
  results, repro = tmp_path / "paper.jsonl", tmp_path / "repro.jsonl"
  results.write_text(json.dumps(row) + "\n")
  argv = [row["name"], f"--results={results}", f"--python={fake}",
          f"--out={tmp_path / 'repro'}", f"--repro_results={repro}"]
  reproduce.main(argv)
  assert json.loads(repro.read_text())["dev_curve_equal"]
  row["dev_curve"][0]["eval_accuracy"] = 0.2
  results.write_text(json.dumps(row) + "\n")
  reproduce.main(argv)
  line = json.loads(repro.read_text().splitlines()[1])
  assert line["equal"] and not line["dev_curve_equal"]
