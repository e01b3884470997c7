"""examples/quickstart.ipynb: committed without outputs, and it runs top to bottom in a Jupyter
kernel of this interpreter, computing what it says (training helps, the reloaded checkpoint gives
the same logits, PyTorch loaded through safetensors gives gt's logits)."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "quickstart.ipynb")

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[test]')")

# Reads back what the notebook computed: one JSON line, from a cell appended to the in-memory copy.
REPORT = """import json, sys
print(json.dumps({"executable": sys.executable, "first_loss": losses[0], "last_loss": losses[-1],
                  "eval_acc": eval_acc, "reloaded_identical": bool(np.array_equal(gt_logits, reloaded_logits)),
                  "torch_max_diff": torch_max_diff, "attention_rows": weights[0].sum(-1).tolist(),
                  "work_left": os.path.exists(work)}))"""


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) >= 6
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


# The notebook's behaviour depends on neither the engine nor the device count (tests/conftest.py).
@pytest.mark.first_pass
def test_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[test]')")
    # A kernelspec of its own, first on JUPYTER_PATH, so the kernel is this interpreter (with this
    # venv's packages) whatever kernels the machine has registered.
    spec = tmp_path / "jupyter" / "kernels" / "lpm-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lpm tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    client = nbclient.NotebookClient(nb, kernel_name="lpm-test", timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()                      # raises CellExecutionError, with the cell, if any cell fails

    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    out = json.loads(nb.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])
    assert os.path.realpath(out["executable"]) == os.path.realpath(sys.executable)
    assert out["last_loss"] < 0.5 * out["first_loss"]
    assert out["eval_acc"] >= 0.6                        # 4 classes: chance is 0.25
    assert out["reloaded_identical"] is True
    rows = np.asarray(out["attention_rows"])               # (sequences, heads, query frames)
    assert rows.shape == (3, 4, 8) and np.abs(rows - 1).max() < 1e-5
    if importlib.util.find_spec("torch") is None:
        assert out["torch_max_diff"] is None
    else:
        assert out["torch_max_diff"] <= 1e-5
    assert out["work_left"] is False                     # the notebook removes what it wrote
    if importlib.util.find_spec("matplotlib") is not None:
        images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
                  if "image/png" in o.get("data", {})]
        assert len(images) == 1
