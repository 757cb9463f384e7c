"""The code stays in the shape DEVELOPERS.md asks for: short functions, no
import cycle inside the package, GLUE facts and text -> ids in one place."""

import ast
import re

import pytest

from harness import REPO

PACKAGE = REPO / "keras_adapters"
SOURCES = sorted(PACKAGE.rglob("*.py")) + [REPO / "run_classifier.py",
                                           REPO / "run_squad.py"]
MAX_FUNCTION_LINES = 60


def _module_name(path):
  parts = path.relative_to(REPO).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
  """Package modules imported anywhere in `path` (lazy imports too)."""
  found = set()
  tree = ast.parse(path.read_text(encoding="utf-8"))
  # A package's PEP 562 __getattr__ imports on attribute access, not when
  # the package is imported.
  tree.body = [n for n in tree.body
               if getattr(n, "name", None) != "__getattr__"]
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      found.add(node.module)
      found |= {f"{node.module}.{a.name}" for a in node.names}
  return {m for m in found if m.startswith("keras_adapters")}


def test_no_function_over_60_lines():
  long = []
  for path in SOURCES + sorted(
      p for d in ("benchmarks", "tests", "notebooks")
      for p in (REPO / d).rglob("*.py")):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_FUNCTION_LINES:
          long.append(f"{path.relative_to(REPO)}:{node.lineno} "
                      f"{node.name} ({lines} lines)")
  assert not long


def test_benchmarks_are_one_package_run_as_modules():
  """Every folder of benchmark scripts is a package, so the scripts import
  each other as `benchmarks.<...>` and run as `python -m benchmarks.<...>`
  from the repository root: none of them (and no test) edits sys.path."""
  scripts = sorted((REPO / "benchmarks").rglob("*.py"))
  assert sorted({str(p.parent.relative_to(REPO)) for p in scripts
                 if not (p.parent / "__init__.py").exists()}) == []
  assert [str(p.relative_to(REPO)) for p in scripts
          if "sys.path" in p.read_text(encoding="utf-8")] == []
  assert [str(p.relative_to(REPO)) for p in sorted(REPO.glob("tests/*.py"))
          if re.search(r"sys\.path\.insert\(.*benchmarks",
                       p.read_text(encoding="utf-8"))] == []


def test_no_import_cycle_inside_the_package():
  modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

  def with_packages(name):
    """`name` and the packages whose __init__ importing it runs first."""
    parts = name.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)}

  graph = {m: {i for name in _imports(p) for i in with_packages(name)
               if i in modules and i != m}
           for m, p in modules.items()}
  # A module's own packages are imported before it: no edge back to them.
  graph = {m: {i for i in deps if not m.startswith(i + ".")}
           for m, deps in graph.items()}
  state, cycles = {}, []

  def visit(m, stack):
    state[m] = "open"
    for dep in sorted(graph[m]):
      if state.get(dep) == "open":
        cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
      elif dep not in state:
        visit(dep, stack + [dep])
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [m])
  assert not cycles


@pytest.mark.parametrize("pattern, allowed", [
    # Tokenizer/packer layers are built only by the preprocessor (SQuAD's
    # span alignment uses squad_lib's own tokenizer, by design).
    (r"BertTokenizer\(|BertPackInputs\(",
     {"keras_adapters/models/text_preprocessor.py"}),
    # GLUE label lists and submission names live only in data/glue.py.
    (r'"not_entailment"|"MNLI-m"|"sts-b":', {"keras_adapters/data/glue.py"}),
])
def test_one_place_per_fact(pattern, allowed):
  found = {str(p.relative_to(REPO)) for p in SOURCES
           if re.search(pattern, p.read_text(encoding="utf-8"))}
  assert found == allowed


_REPORT_TF = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: sys.__stdout__.write(\n"
    "    f\"tensorflow imported: {'tensorflow' in sys.modules}\\n\"))\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def _short_row(split, lines):
  if split == "train":
    lines[2] = "\t".join(lines[2].split("\t")[:3])
  return lines


@pytest.mark.parametrize("bad", ["--task_name=MRPCX", "--max_seq_length=2",
                                 "--train_batch_size=8",  # 4 rows
                                 "--bucket_boundaries=64,32", "short_row"])
def test_flag_and_data_errors_come_before_tensorflow_loads(bad, tmp_path):
  """A bad flag or data row is reported without importing TensorFlow (so
  in well under a second): the driver's error path stays import-light."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import harness  # pylint: disable=g-import-not-at-top
  data = harness.glue_subset(tmp_path / "mrpc", dict(train=4, dev=4),
                             edit=_short_row if bad == "short_row" else None)
  flags = {"--task_name": "MRPC", "--data_dir": str(data), "--do_train": None,
           "--output_dir": str(tmp_path / "out"), "--bucket_by_length": None}
  if bad.startswith("--"):
    name, _, value = bad.partition("=")
    flags[name] = value
  args = [k if v is None else f"{k}={v}" for k, v in flags.items()]
  result = subprocess.run(
      [sys.executable, "-c", _REPORT_TF, str(REPO / "run_classifier.py"),
       *args], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.startswith("run_classifier.py: error: "), result.stderr
  assert "tensorflow imported: False" in result.stdout, result.stdout


@pytest.mark.parametrize("bad", ["missing", "truncated"])
def test_squad_file_errors_come_before_tensorflow_loads(bad, tmp_path):
  """run_squad.py reads (and so checks) its SQuAD files before TensorFlow
  loads."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  path = tmp_path / "dev.json"
  if bad == "truncated":
    path.write_text('{"data": [')
  result = subprocess.run(
      [sys.executable, "-c", _REPORT_TF, str(REPO / "run_squad.py"),
       "--do_predict", f"--predict_file={path}",
       f"--output_dir={tmp_path / 'out'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr == (
      f"run_squad.py: error: SQuAD file {path} not found\n" if bad == "missing"
      else f"run_squad.py: error: {path}: not valid JSON (line 1, column 11: "
      "Expecting value); truncated? fix or re-download it\n")
  assert "tensorflow imported: False" in result.stdout, result.stdout


@pytest.mark.parametrize("bad", ["missing_pack", "export_dir_taken"])
def test_exporter_checks_come_before_tensorflow_loads(bad, tmp_path):
  """`python -m keras_adapters.serving.export` with a missing pack or a used
  export dir errors without importing TensorFlow (-X importtime lists every
  module the process imported)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  export_dir = tmp_path / "export"
  if bad == "export_dir_taken":
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_bytes(b"")
  result = subprocess.run(
      [sys.executable, "-X", "importtime", "-m",
       "keras_adapters.serving.export",
       f"--adapter_pack={tmp_path / 'missing.npz'}",
       f"--export_dir={export_dir}"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  errors = [l for l in result.stderr.splitlines()
            if not l.startswith("import time:")]
  assert errors == [
      f"export: error: {export_dir} already holds a SavedModel; pass a new "
      "(e.g. versioned) --export_dir" if bad == "export_dir_taken" else
      f"export: error: adapter pack {tmp_path / 'missing.npz'} not found"]
  imported = {l.split("|")[-1].strip().split(".")[0]
              for l in result.stderr.splitlines()
              if l.startswith("import time:")}
  assert "keras_adapters" in imported and "tensorflow" not in imported
