"""The tiny real driver runs behind tests/test_resume.py and
tests/test_frozen.py (large tier), started once per session by conftest's
`reliability` fixture; see test_resume.py for what each one is."""

import shutil

import harness
from keras_adapters.saving import faults

FAULT = faults.ENV
TOTAL_STEPS, SAVE_EVERY = 16, 4

FLAGS = ["--task_name=MRPC", "--do_train", "--do_eval", "--do_predict",
         "--max_seq_length=48", "--train_batch_size=16",
         "--num_train_epochs=1", f"--save_checkpoints_steps={SAVE_EVERY}",
         "--learning_rate=1e-3", "--warmup_proportion=0.1"]
DETERMINISTIC = ["--deterministic"]


def run(args, fault=None, program="run_classifier.py"):
  env = harness.driver_env(**({FAULT: fault} if fault else {}))
  return harness.run_driver(program, args, env=env)


def _snapshot(out, result, keep=()):
  """What a run left: its result, the files under `out`, and copies of
  the paths in `keep` (they change in the next run)."""
  files = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                 if p.is_file()) if out.exists() else []
  kept = {}
  for name in keep:
    source = out / name
    if source.is_dir():
      kept[name] = out.parent / f"{out.name}_{len(files)}_{name}"
      shutil.copytree(source, kept[name])
  hidden = [p for p in out.rglob(".*") if p.is_file() or p.is_dir()] if (
      out.exists()) else []
  return dict(result=result, files=files, kept=kept,
              hidden=sorted(str(p.relative_to(out)) for p in hidden),
              temps={str(p.relative_to(out)): p.read_bytes()
                     for p in hidden if p.is_file()})


def _killed_and_rerun(command, out, export_dir):
  """The command killed after step 1, after step 6, in its first checkpoint
  write (ckpt-8, resuming from ckpt-4), after step 16 (the last), in the
  pack write and in the results write, re-run each time, then run to its
  end; then the exporter killed in its SavedModel write, and again without
  the fault. Returns {fault: snapshot after that run} (None: the clean
  re-run; "export:..." the exporter's runs)."""
  links = {}
  for fault in ("step:1", "step:6", "write:checkpoint:1", "step:16",
                "write:pack", "write:results", None):
    links[fault] = _snapshot(out, run(command, fault), keep=("checkpoints",))
  export = [f"--adapter_pack={out / 'adapter_pack.npz'}",
            f"--export_dir={export_dir}"]
  for fault in ("write:export", None):
    result = run(export, fault, program="export")
    links[f"export:{fault}"] = dict(result=result, listing=sorted(
        p.name for p in export_dir.parent.iterdir()))
  return links


def reliability_runs(root):
  """{name: Future} of the runs described above, started in the background
  under `root` (a Path). conftest.py calls it once per session."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  cache_before = harness.file_hashes(harness.minilm_cache())
  data = harness.glue_subset(root / "mrpc", dict(train=256, dev=128, test=64))
  sst2 = harness.glue_subset(root / "sst2", dict(train=64), task="SST-2")
  command = lambda out: FLAGS + [f"--data_dir={data}", f"--output_dir={out}"]
  pool = concurrent.futures.ThreadPoolExecutor(4)
  futures = {
      "reference": pool.submit(run, command(root / "reference")),
      "repeat": pool.submit(run, command(root / "repeat")),
      "reference_deterministic": pool.submit(
          run, command(root / "reference_deterministic") + DETERMINISTIC),
      "killed": pool.submit(
          _killed_and_rerun, command(root / "killed") + DETERMINISTIC,
          root / "killed", root / "exports" / "1"),
  }

  def task_b():
    harness.checked(futures["reference"].result())
    before = harness.file_hashes(root / "reference")
    trained_b = run(["--task_name=SST-2", "--do_train", f"--data_dir={sst2}",
                      "--max_seq_length=32", "--train_batch_size=16",
                      "--num_train_epochs=1", f"--output_dir={root / 'b'}"])
    predicted_a = run([
        "--task_name=MRPC", "--do_predict", f"--data_dir={data}",
        "--max_seq_length=48", f"--output_dir={root / 'a_again'}",
        f"--adapter_pack={root / 'reference' / 'adapter_pack.npz'}"])
    return before, cache_before, trained_b, predicted_a

  futures["task_b"] = pool.submit(task_b)
  pool.shutdown(wait=False)
  return root, futures
