"""Step a CUDA-graph session one token at a time and say which step fails (device debugging)."""
import sys

import numpy as np

import orc
from orc import synth

p = synth.make_model("/tmp/dg.gguf", synth.spec_for("qwen2", "Q8_0"))
m = orc.Model(p, device="cuda")
for graphs in (False, True):
    s = orc.Session(m, n_ctx=96, graphs=graphs)
    s.forward([1, 2, 3, 4, 5, 6, 7], "last")
    for i in range(4):
        try:
            out = s.forward([10 + i], "last")
            print(f"graphs={graphs} step {i} ok argmax {int(np.argmax(out))}", flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"graphs={graphs} step {i} FAILED: {e}", flush=True)
            break
sys.stdout.flush()
