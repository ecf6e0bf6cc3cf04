"""Execute the notebooks in notebooks/ and store them with their outputs (as committed).

    python3 tools/run_notebooks.py                 # every notebook, in place
    python3 tools/run_notebooks.py notebooks/debugging_tour.ipynb

The kernel imports the orc of this checkout and plots with the inline backend, as
tests/test_notebooks.py runs them; the tour uses the real SmolLM2 model when orc's model cache has it
(python -m orc.fixtures smollm2-135m-instruct), so run that first: the stored outputs should be the
real model's. Stored PNGs are kept small by the notebooks' own figure settings.
"""
from __future__ import annotations

import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute(path: str) -> None:
    import nbclient
    import nbformat

    os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)  # timestamps: noise in every diff
    nbformat.validate(nb)
    nbformat.write(nb, path)
    print(f"{path}: executed, {os.path.getsize(path) / 1024:.0f} KiB")


def main(argv: list[str]) -> int:
    paths = argv or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    for p in paths:
        execute(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
