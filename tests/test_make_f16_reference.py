"""tools/make_f16_reference.py: the F16 reference holds the source's dequantized values rounded to
float16, the metadata of the source, and a requantized copy that a KL divergence can tell apart."""
import numpy as np

import orc
from orc import synth

from realmodels import load_tool

IDS = [int(i) for i in np.random.default_rng(5).integers(3, 320, 130)]


def test_f16_reference_and_requantized_copy(tmp_path):
    tool = load_tool("make_f16_reference")
    src = synth.make_model(tmp_path / "q4k.gguf", synth.spec_for("llama", "Q4_K"))
    ref, req = tmp_path / "f16.gguf", tmp_path / "q8.gguf"
    stats = tool.convert(src, str(ref), requant="Q8_0", requant_out=str(req), keep=["blk.1.ffn_down.weight"])
    assert stats["kept"] == 1 and stats["dequantized"] > 10 and stats["requantized"] == stats["dequantized"]
    with orc.GGUFFile(src) as s, orc.GGUFFile(str(ref)) as r, orc.GGUFFile(str(req)) as q:
        types = {t.name: t.type for t in r.tensors}
        for t in s.tensors:
            if t.name == "blk.1.ffn_down.weight":
                assert types[t.name] == "Q4_K" and np.array_equal(r.raw(t.name), s.raw(t.name))
            elif t.type == "F32":
                assert types[t.name] == "F32" and np.array_equal(r.raw(t.name), s.raw(t.name))
            else:
                want = orc.dequantize(s.raw(t.name), t.type, t.shape).astype(np.float16)
                got = np.frombuffer(r.raw(t.name).tobytes(), np.float16).reshape(t.shape)
                assert types[t.name] == "F16" and np.array_equal(got, want), t.name
        assert {t.type for t in q.tensors} == {"Q8_0", "F32", "Q4_K"}
        for k, v in s.metadata.items():
            if k != "general.file_type":
                assert k in r.metadata and (r.metadata[k] == v if not isinstance(v, np.ndarray)
                                            else np.array_equal(r.metadata[k], v)), k
        assert r.metadata["general.file_type"] == 1 and q.metadata["general.file_type"] == 7
        assert "dequantized weights of q4k.gguf" in r.metadata["orc.reference.note"]
    # the reference computes what the source computes, to float16's precision; the requantized copy differs
    same = orc.kld(f"{ref}@cpu", f"{src}@cpu", IDS, n_ctx=64, layers=False)
    requantized = orc.kld(f"{ref}@cpu", f"{req}@cpu", IDS, n_ctx=64, layers=False)
    assert 0 < same.mean_kld < 1e-4 and same.same_top_p > 0.95
    assert requantized.mean_kld > same.mean_kld
