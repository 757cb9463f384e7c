"""notebooks/adapter_tuning.ipynb runs top to bottom in a real Jupyter
kernel (nbclient + ipykernel) on real SST-2 data, and its results hold."""

import json
import os
import sys

import pytest

from harness import GLUE_DIR, REPO

sys.path.insert(0, str(REPO / "notebooks"))
import execute  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.large
def test_notebook_runs_and_its_results_hold(tmp_path, monkeypatch):
  monkeypatch.setenv("GLUE_DIR", str(GLUE_DIR))  # the kernel inherits it
  nb = execute.execute(str(REPO / "notebooks" / "adapter_tuning.ipynb"),
                       cwd=str(tmp_path))
  errors = [o for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]
  assert not errors
  text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []) if o.output_type == "stream")
  result = json.loads(text.split("NOTEBOOK_RESULT ", 1)[1].splitlines()[0])
  # 1,024 sentences, 2 epochs: well above the majority class on all of dev.
  assert result["dev"]["accuracy"] > result["majority"] + 0.2, result
  assert result["steps"] == 64  # 2 x 1024 // 32 full batches
  assert result["reload_diff"] == 0.0
  assert result["served_diff"] < 1e-5
  assert result["trainable_params"] == 753_794
  images = [o for c in nb.cells for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
  assert len(images) == 2  # the parameter bar and the training curves
  assert (tmp_path / "outputs" / "sst2_export" / "1" / "saved_model.pb"
          ).is_file()
  assert os.path.getsize(tmp_path / "outputs" / "sst2_adapters.npz") > 1e6
