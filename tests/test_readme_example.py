"""README's Python example runs as written: it is examples/readme_example.py, executed here on the
real SmolLM2 model on the CPU, and README.md's block must be that file, character for character."""
import os
import re
import subprocess
import sys

import orc

from realmodels import real_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(orc.__file__)))
SCRIPT = os.path.join(ROOT, "examples", "readme_example.py")


def test_readme_block_is_the_example_script():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"<!-- readme-example: examples/readme_example.py[^>]*-->\n```python\n(.*?)```\n"
                  r"<!-- /readme-example -->", readme, flags=re.S)
    assert m, "README.md lost its readme-example block"
    assert m.group(1) == open(SCRIPT, encoding="utf-8").read(), \
        "README.md's example and examples/readme_example.py differ: change both"


def test_readme_example_runs_on_the_real_model():
    real_model("smollm2-135m-instruct")  # skipped, saying why, when the model is not cached
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               CUDA_VISIBLE_DEVICES="", ORC_FIXTURES_OFFLINE="1")  # the CPU; nothing downloaded here
    r = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=env, timeout=300,
                       cwd=os.path.dirname(SCRIPT))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("llama 30 272 ")
    answer = lines[1]
    assert "Paris" in answer and "<|im_end|>" not in r.stdout and ":" != answer.strip(), r.stdout
    assert lines[2].startswith(("first divergence: ", "no divergence: ")), "first_divergence(actual, reference)"
    assert lines[-1] == "Diagnosis(ok=True, codes=[])"
