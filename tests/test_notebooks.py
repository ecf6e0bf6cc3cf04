"""Every notebook in notebooks/ executes top to bottom (nbclient, kernel python3), so the tour
cannot rot. The notebooks assert their own results (the logit lens reproduces the logits, the
recomputed attention reproduces attn_out, the fault is caught at the right hook), so a wrong
number fails here too. Notebooks are stored executed, with their outputs, so that they can be read
without running them (tools/run_notebooks.py executes and stores them); the tour's stored outputs
are the real SmolLM2 model's, on the CPU, and kept small.
"""
import glob
import os
import re

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


MAX_NOTEBOOK_BYTES = 300_000
MAX_PNG_BYTES = 60_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_executed_and_small(path):
    nbformat = _need("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        "store it executed top to bottom: python3 tools/run_notebooks.py"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], "stored with an error"
    assert os.path.getsize(path) < MAX_NOTEBOOK_BYTES, "keep the stored notebook small"
    import base64

    for o in outputs:
        png = o.get("data", {}).get("image/png")
        if png:
            assert len(base64.b64decode(png)) < MAX_PNG_BYTES, "keep stored plots compact (figure.dpi)"
    if os.path.basename(path) == "debugging_tour.ipynb":
        text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
        assert "SmolLM2-135M-Instruct.Q4_1.gguf" in text and "device for this tour: cpu" in text, \
            "store the tour executed on the real SmolLM2 model on the CPU"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, monkeypatch, tmp_path):
    nbformat = _need("nbformat")
    nbclient = _need("nbclient")
    _need("ipykernel")
    _need("matplotlib")
    # The kernel (and the CLI it starts) import the orc of this checkout; the tour uses the real
    # SmolLM2 model when it is cached (CI fetches it), else its synthetic one.
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
        # the first hook reading a quantized tensor: blk.0.q (synthetic, float16 embeddings) or embd (SmolLM2's
        # token_embd is Q8_0)
        assert re.search(r"first divergence: (blk\.0\.q|embd) at position 0", text), "the CLI diff catches the fault"
        # every comparison the invariance check made is exact on the CPU (the count grows with the
        # checks it knows: 7 on the tour's call since forward_batch joined them)
        exact = re.search(r"(\d+)/(\d+) comparisons exact", text)
        assert exact and (exact.group(1) == exact.group(2) or "cuda" in text), "the invariance check"
        assert int(exact.group(2)) >= 7, exact.group(0)
