"""Every notebook in notebooks/ executes top to bottom (nbclient, kernel python3), so the tour
cannot rot. The notebooks assert their own results (the logit lens reproduces the logits, the
recomputed attention reproduces attn_out, the fault is caught at the right hook), so a wrong
number fails here too. Notebooks are stored without outputs."""
import glob
import os

import pytest

import orc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


def _need(module):
    try:
        return __import__(module)
    except ImportError:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs nbclient, nbformat, "
                    "ipykernel and matplotlib)")


def test_there_are_notebooks():
    assert any(p.endswith("debugging_tour.ipynb") for p in NOTEBOOKS), NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_without_outputs(path):
    nbformat = _need("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has stored outputs: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, monkeypatch, tmp_path):
    nbformat = _need("nbformat")
    nbclient = _need("nbclient")
    _need("ipykernel")
    _need("matplotlib")
    # The kernel (and the CLI it starts) import the orc of this checkout; the tour's default model
    # is synthetic whatever the machine has cached.
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("ORC_TOUR_MODEL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, when a cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    if os.path.basename(path) == "debugging_tour.ipynb":
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) == 3, "the logit lens, attention and divergence plots"
        html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
        assert "<b>orc.Model</b>" in html, "the model's HTML repr is shown"
        text = "".join(o.get("text", "") for o in outputs)
        assert "first divergence: blk.0.q at position 0" in text, "the CLI diff catches the fault"
