"""benchmarks.speed, peak_memory, attention_impl, profile_step, batching and
mixed_precision: each runs end to end at a tiny size (real MiniLM, real MRPC
pairs, two of the three training modes) in its own process, as
`python -m benchmarks.<name>` from the repository root, and appends one
well-formed results line. Their timings mean nothing at this size; the real
runs are in docs/RESULTS.md §3."""

import json
import subprocess
import sys

import pytest

from benchmarks import fit_timing
from harness import REPO, subprocess_env

pytestmark = pytest.mark.large  # benchmark smoke tests: each script in its own process

TINY = ["--batch", "2", "--seq", "16"]
TWO_MODES = ["--modes", "full,adapter"]  # layer_norm runs the same code paths


def _run(module, *args):
  """`python -m benchmarks.<module> args` from the repository root."""
  result = subprocess.run(
      [sys.executable, "-m", f"benchmarks.{module}", *args],
      capture_output=True, text=True, env=subprocess_env(), cwd=REPO,
      timeout=900)
  return result


def _one_line(module, out, *args):
  """Runs `module` with `args` and `--results out`; its one results line."""
  result = _run(module, *args, "--results", str(out))
  assert result.returncode == 0, result.stderr[-2000:]
  lines = out.read_text().splitlines()
  assert len(lines) == 1
  return json.loads(lines[0])


def test_speed_times_every_mode_and_derives_its_ratios(tmp_path):
  out = tmp_path / "speed.jsonl"
  line = _one_line("speed", out, *TINY, *TWO_MODES, "--steps", "1",
                   "--rounds", "1", "--warmup", "1", "--xla", "off",
                   "--infer_steps", "1", "--no_memory")
  assert line["errors"] == {}
  assert set(line["median_seconds"]) == {
      "train:adapter:0", "train:full:0", "infer:adapter:0:1", "infer:adapter:0:2", "infer:bare:0:1",
      "infer:bare:0:2"}
  assert all(s > 0 for s in line["median_seconds"].values())
  seconds = line["median_seconds"]
  assert line["ratios"]["adapter/full:xla0"] == pytest.approx(
      seconds["train:adapter:0"] / seconds["train:full:0"], abs=1e-3)
  assert all(g > 0 for g in line["matmul_gflops"].values())
  assert set(line["achieved"]) == {"adapter:xla0", "full:xla0"}
  for mode in ("adapter", "full"):
    achieved = line["achieved"][f"{mode}:xla0"]
    assert 0 < achieved["share_of_matmul_peak"] < 1
  assert line["command"].startswith("python -m benchmarks.speed --batch 2")


def test_peak_memory_reads_every_mode_in_its_own_process(tmp_path):
  out = tmp_path / "peak.jsonl"
  line = _one_line("peak_memory", out, *TINY, *TWO_MODES, "--rounds", "1",
                   "--steps", "1")
  assert set(line["runs"]) == {"adapter", "full"}
  for mode, (run,) in line["runs"].items():
    # Past TensorFlow and the 91 MB of MiniLM weights, and a high-water mark.
    assert 500 < run["after_build_mb"] <= run["after_step_mb"][0]
    assert line["median_peak_mb"][mode] == run["after_step_mb"][-1]


def test_profile_splits_dense_einsums_from_attention(tmp_path):
  out = tmp_path / "profile.jsonl"
  adapter = _one_line("profile_step", out, *TINY, "--modes", "adapter",
                      "--steps", "1", "--top", "50")["modes"]["adapter"]
  ops = adapter["top_ops"]
  # Under any op name (Einsum or BatchMatMul, oneDNN's _Mkl... on Intel).
  assert "Einsum (dense layers)" in ops and "Attention scores and context" in ops
  assert not any(name.endswith(("Einsum", "BatchMatMulV2", "BatchMatMulV3"))
                 for name in ops)
  assert sum(op["share"] for op in ops.values()) == pytest.approx(1, abs=0.02)
  # The matrix-product share: dense einsums, attention products, MatMuls.
  products = [k for k in ops if k.startswith(("Einsum", "Attention")) or
              k.replace("_Mkl", "").replace("_Fused", "") == "MatMul"]
  assert adapter["matmul_share"] == pytest.approx(
      sum(ops[k]["share"] for k in products), abs=0.01)


@pytest.mark.parametrize("module,args,message", [
    ("speed", ["--xla", "maybe"], "--xla maybe: use off, on or off,on"),
    ("profile_step", ["--modes", "adapters"], "--modes: unknown adapters"),
    ("peak_memory", ["--modes", "adapter,lora"], "--modes: unknown lora"),
    ("paper.linear_probe", ["--task", "STS-B"],
     "--task STS-B is a regression task"),
    ("paper.linear_probe", ["--task", "QNLI"], "--task QNLI: "),
])
def test_bad_flags_get_a_one_line_error(tmp_path, module, args, message):
  out = tmp_path / "results.jsonl"
  result = _run(module, *args, "--results", str(out))
  assert result.returncode == 2
  assert message in result.stderr.strip().splitlines()[-1]
  assert not out.exists()


def test_attention_impl_times_both_attentions_in_every_mode(tmp_path):
  """One mode (the adapter-vs-full ratios are speed.py's, tested above)."""
  out = tmp_path / "attention.jsonl"
  line = _one_line("attention_impl", out, *TINY, "--modes", "adapter",
                   "--steps", "1", "--rounds", "1")
  assert set(line["cpu_s"]) == {"adapter:einsum", "adapter:matmul"}
  assert all(v > 0 for v in line["wall_s"].values())
  assert line["matmul_vs_einsum_cpu"]["adapter"] == pytest.approx(
      line["cpu_s"]["adapter:matmul"] / line["cpu_s"]["adapter:einsum"],
      abs=1e-3)
  assert "adapter_vs_full_cpu" not in line  # needs both modes
  for config, classes in line["attention_classes"].items():
    assert classes == (["MatmulAttention"] if config.endswith("matmul") else
                       ["MultiHeadAttention"]), config


SCRIPTS = sorted(
    ".".join(p.relative_to(REPO).with_suffix("").parts)
    for p in (REPO / "benchmarks").rglob("*.py")
    if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("module", SCRIPTS)
def test_every_script_runs_as_a_module_and_prints_its_flags(module):
  """`python -m benchmarks.<...> --help` from the repository root: the
  script's imports resolve inside the package and its flags parse."""
  result = subprocess.run([sys.executable, "-m", module, "--help"],
                          capture_output=True, text=True,
                          env=subprocess_env(), cwd=REPO, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.startswith("usage: "), result.stdout[:200]


def test_stored_command_leaves_out_where_the_line_was_written():
  assert fit_timing.without_results_flag(
      ["--steps", "6", "--results", "/tmp/x.jsonl", "--results=/tmp/y",
       "--dev_examples", "32"]) == ["--steps", "6", "--dev_examples", "32"]


def test_batching_measures_each_way_to_batch_in_its_own_process(tmp_path):
  out = tmp_path / "batching.jsonl"
  line = _one_line("batching", out, "--rounds", "1", "--steps", "2",
                   "--warmup", "1", "--batch", "4")
  modes = ("static", "dynamic", "bucketed")
  assert set(line["useful_tokens_per_s"]) == set(modes)
  assert all(line["useful_tokens_per_s"][m] > 0 for m in modes)
  # 3,668 MRPC training pairs in batches of 4 pad-free of a partial batch.
  assert line["steps_per_epoch"]["static"] == 917
  # Static batches pad every pair to 128; MRPC's pairs are far shorter.
  assert line["padding_share"]["static"] > 0.3
  assert line["padding_share"]["dynamic"] < line["padding_share"]["static"]
  assert line["speedup_vs_static"]["static"] == 1.0
  assert line["command"] == ("python -m benchmarks.batching --rounds 1 "
                             "--steps 2 --warmup 1 --batch 4")


def test_mixed_precision_trains_both_policies_from_one_seed(tmp_path):
  out = tmp_path / "mp.jsonl"
  line = _one_line("mixed_precision", out, "--steps", "2", "--batch", "2",
                   "--seq", "16", "--dev_examples", "4")
  assert set(line["dev"]) == {"float32", "mixed_bfloat16"}
  assert set(line["last_losses_mean"]) == {"float32", "mixed_bfloat16"}
  # bfloat16 keeps 8 bits of mantissa: the losses differ, but not by much.
  assert 0 < line["loss_max_abs_diff"] < 0.2
  assert line["dev_prediction_agreement"] in (0.0, 0.25, 0.5, 0.75, 1.0)
