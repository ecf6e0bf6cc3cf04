"""The MoE references (issue #15) checked against each other, without orc running the models and
without torch: the goldens are committed.

- orc.synth_moe regenerates the golden GGUF files byte for byte (SHA-256 in the golden);
- tests/numpy_moe.py, a float64 forward that reads those files, reproduces HF transformers'
  float32 logits, hidden states and router decisions (NMSE <= 1e-10): the GGUF conversion (names,
  layouts, the MXFP4 nibble order, the gate/up split, the transposes) is the converter's;
- the files follow llama.cpp: the tensor set, ggml shapes and types of llama.cpp's
  load_arch_tensors for gpt-oss and qwen3moe, the metadata keys convert_hf_to_gguf.py writes, the
  HF -> GGUF names of gguf-py's TensorNameMap;
- MXFP4: orc.synth_moe's quantizer against gguf-py's, exact round trips on representable values,
  the HF checkpoint's nibble order and the converter's repack;
- the golden prompts exercise what they must (the sliding window, the sinks, the SwiGLU clamp,
  YaRN), shown by breaking each one in the NumPy forward;
- the benchmark writer produces valid files (checked at a tiny size).
"""
import json
import os
import sys

import numpy as np
import pytest

from orc import synth_moe

gguf = pytest.importorskip("gguf", reason="gguf-py is the GGUF reader of these tests")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_moe  # noqa: E402

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "moe")
NAMES = sorted(synth_moe.GOLDEN_SPECS)
TOL = 1e-10


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("moe")
    return {n: synth_moe.make_model(d / f"{n}.gguf", n) for n in NAMES}


@pytest.fixture(scope="module")
def forwards(files):
    out = {}
    for n in NAMES:
        m = numpy_moe.MoeModel(files[n])
        out[n] = (m,) + m.forward(golden(n)["ids"])
    return out


def golden(name):
    g = np.load(os.path.join(GOLDEN_DIR, name + ".npz"))
    return {k: g[k] for k in g.files}


def test_goldens_are_complete_and_small():
    assert sorted(os.path.basename(p)[:-4] for p in os.listdir(GOLDEN_DIR) if p.endswith(".npz")) == NAMES
    assert sum(os.path.getsize(os.path.join(GOLDEN_DIR, n + ".npz")) for n in NAMES) < 2.2e6
    for n in NAMES:
        g = golden(n)
        s = synth_moe.spec(n)
        assert json.loads(str(g["spec"])) == {k: getattr(s, k) for k in json.loads(str(g["spec"]))}
        assert g["logits"].shape == (s.n_prompt, s.n_vocab) and g["logits"].dtype == np.float32
        assert s.n_prompt > s.sliding_window
        np.testing.assert_array_equal(g["ids"], synth_moe.golden_ids(n))
        # the layers matter: the answer is not the input token, positions differ
        top1 = g["logits"].argmax(-1)
        assert np.mean(top1 == g["ids"]) < 0.1 and len(set(top1.tolist())) > s.n_prompt // 3


@pytest.mark.parametrize("name", NAMES)
def test_gguf_regenerates_byte_for_byte(files, name):
    assert synth_moe.file_sha256(files[name]) == str(golden(name)["gguf_sha256"]), \
        "orc.synth_moe (or gguf-py's writer) changed: regenerate with tools/make_moe_goldens.py"


@pytest.mark.parametrize("name", NAMES)
def test_numpy_forward_matches_hf(forwards, name):
    g = golden(name)
    m, logits, tr = forwards[name]
    assert np.isfinite(logits).all()
    assert numpy_moe.nmse(logits, g["logits"]) <= TOL
    assert max(numpy_moe.nmse(logits[t], g["logits"][t]) for t in range(len(logits))) <= 10 * TOL
    np.testing.assert_array_equal(logits.argmax(-1), g["logits"].argmax(-1))
    for j, i in enumerate(g["hidden_layers"]):
        mine = tr["embd"] if i == 0 else tr[f"blk.{i - 1}.resid_post"]
        assert numpy_moe.nmse(mine, g["hidden_states"][j]) <= TOL, i
    il = int(g["router_layer"])
    assert numpy_moe.nmse(tr[f"blk.{il}.moe_router"], g["router_logits"]) <= TOL
    np.testing.assert_array_equal(tr[f"blk.{il}.moe_topk_ids"], g["topk_ids"])
    assert numpy_moe.nmse(tr[f"blk.{il}.moe_topk_w"], g["topk_w"]) <= TOL
    np.testing.assert_allclose(g["topk_w"].sum(-1), 1.0, rtol=1e-6)
    for i in range(m.n_layer):
        margin = numpy_moe.topk_margin(tr[f"blk.{i}.moe_router"], m.n_expert_used).min()
        np.testing.assert_allclose(margin, g["router_margin"][i], rtol=1e-6)


def test_yarn_rounding_difference(forwards):
    """llama.cpp rounds the YaRN correction range (floor/ceil), transformers does not
    (truncate=False): different frequencies for the pairs 9..17 of 32, logits that differ far above
    the float32 noise, and a golden for each."""
    g = golden("gpt-oss")
    m, logits, _ = forwards["gpt-oss"]
    inv_hf, scale = m.inv_freq("hf")
    inv_ggml, scale2 = m.inv_freq("ggml")
    assert scale == scale2 == pytest.approx(1 + 0.1 * np.log(32))
    differ = np.nonzero(~np.isclose(inv_hf, inv_ggml, rtol=1e-12, atol=0))[0]
    assert differ.tolist() == list(range(9, 18))
    ggml_logits, _ = m.forward(g["ids"], yarn="ggml")
    assert numpy_moe.nmse(ggml_logits, g["logits_yarn_ggml"]) <= 1e-12
    assert numpy_moe.nmse(ggml_logits, g["logits"]) > 1e-6
    assert numpy_moe.nmse(logits, g["logits"]) < 1e-4 * numpy_moe.nmse(ggml_logits, g["logits"])


def test_prompts_exercise_window_sinks_and_clamp(files, forwards):
    m, logits, tr = forwards["gpt-oss"]
    ids = golden("gpt-oss")["ids"]
    W = m.window

    class NoWindow(numpy_moe.MoeModel):
        def is_swa(self, il):
            return False

    class NoSinks(numpy_moe.MoeModel):
        def attention(self, q, k, v, il, sinks=None):
            return super().attention(q, k, v, il, None)

    class OddLayersSlide(numpy_moe.MoeModel):
        def is_swa(self, il):
            return il % 2 == 1

    full, _ = NoWindow(files["gpt-oss"]).forward(ids)
    np.testing.assert_array_equal(full[:W], logits[:W])          # the window only matters past 128 tokens
    assert numpy_moe.nmse(full[W:], logits[W:]) > 1e-3
    assert numpy_moe.nmse(NoSinks(files["gpt-oss"]).forward(ids)[0], logits) > 1e-3
    assert numpy_moe.nmse(OddLayersSlide(files["gpt-oss"]).forward(ids)[0][W:], logits[W:]) > 1e-3
    # the SwiGLU clamp (gate <= 7, |up| <= 7) acts on some values of the selected experts
    il = 1
    h, sel = tr[f"blk.{il}.ffn_norm"], tr[f"blk.{il}.moe_topk_ids"]
    gate = np.einsum("tkfe,te->tkf", m.w[f"blk.{il}.ffn_gate_exps.weight"][sel], h) + \
        m.w[f"blk.{il}.ffn_gate_exps.bias"][sel]
    up = np.einsum("tkfe,te->tkf", m.w[f"blk.{il}.ffn_up_exps.weight"][sel], h) + m.w[f"blk.{il}.ffn_up_exps.bias"][sel]
    assert 0.001 < (gate > 7).mean() < 0.2 and 0.001 < (np.abs(up) > 7).mean() < 0.2


# --------------------------------------------------------------------------- llama.cpp's conventions

def llama_cpp_tensors(arch, hp):
    """{name: (ggml ne, ggml type)} as llama.cpp's load_arch_tensors creates them
    (src/models/openai-moe.cpp, src/models/qwen3moe.cpp), written from those files."""
    E, V, H, KV, D, X, F = (hp[k] for k in ("n_embd", "n_vocab", "n_head", "n_head_kv", "head_dim", "n_expert",
                                            "n_ff_exp"))
    et, wt = hp["expert_type"], hp["weight_type"]
    t = {"token_embd.weight": ([E, V], wt), "output_norm.weight": ([E], "F32"), "output.weight": ([E, V], wt)}
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = ([E], "F32")
        t[p + "attn_q.weight"] = ([E, H * D], wt)
        t[p + "attn_k.weight"] = ([E, KV * D], wt)
        t[p + "attn_v.weight"] = ([E, KV * D], wt)
        t[p + "attn_output.weight"] = ([H * D, E], wt)
        t[p + "ffn_gate_inp.weight"] = ([E, X], "F32")
        t[p + "ffn_gate_exps.weight"] = ([E, F, X], et)
        t[p + "ffn_down_exps.weight"] = ([F, E, X], et)
        t[p + "ffn_up_exps.weight"] = ([E, F, X], et)
        if arch == "gpt-oss":
            t[p + "post_attention_norm.weight"] = ([E], "F32")
            t[p + "attn_sinks.weight"] = ([H], "F32")
            t[p + "attn_q.bias"] = ([H * D], "F32")
            t[p + "attn_k.bias"] = ([KV * D], "F32")
            t[p + "attn_v.bias"] = ([KV * D], "F32")
            t[p + "attn_output.bias"] = ([E], "F32")
            t[p + "ffn_gate_inp.bias"] = ([X], "F32")
            t[p + "ffn_gate_exps.bias"] = ([F, X], "F32")
            t[p + "ffn_down_exps.bias"] = ([E, X], "F32")
            t[p + "ffn_up_exps.bias"] = ([F, X], "F32")
        else:
            t[p + "attn_q_norm.weight"] = ([D], "F32")
            t[p + "attn_k_norm.weight"] = ([D], "F32")
            t[p + "ffn_norm.weight"] = ([E], "F32")
    return t


def fields(path):
    r = gguf.GGUFReader(path)
    return r, {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}


@pytest.mark.parametrize("name", NAMES)
def test_tensors_follow_llama_cpp(files, name):
    import dataclasses
    s = synth_moe.spec(name)
    r, _ = fields(files[name])
    want = llama_cpp_tensors(s.arch, dataclasses.asdict(s))
    got = {t.name: ([int(x) for x in t.shape], t.tensor_type.name) for t in r.tensors}
    assert got == want


@pytest.mark.parametrize("name", NAMES)
def test_metadata_follows_convert_hf_to_gguf(files, name):
    s = synth_moe.spec(name)
    _, kv = fields(files[name])
    a = s.arch
    want = {
        "general.architecture": a, f"{a}.block_count": s.n_layer, f"{a}.context_length": s.n_ctx_train,
        f"{a}.embedding_length": s.n_embd, f"{a}.feed_forward_length": s.n_ff, f"{a}.attention.head_count": s.n_head,
        f"{a}.attention.head_count_kv": s.n_head_kv, f"{a}.rope.freq_base": s.rope_theta,
        f"{a}.expert_count": s.n_expert, f"{a}.expert_used_count": s.n_expert_used,
        f"{a}.attention.key_length": s.head_dim, f"{a}.attention.value_length": s.head_dim,
        f"{a}.expert_feed_forward_length": s.n_ff_exp, "tokenizer.ggml.model": "gpt2",
        "general.quantization_version": 2,
    }
    if a == "gpt-oss":
        want.update({f"{a}.attention.sliding_window": 128, f"{a}.rope.scaling.type": "yarn",
                     f"{a}.rope.scaling.factor": 32.0, f"{a}.rope.scaling.original_context_length": 4096,
                     f"{a}.rope.scaling.yarn_beta_fast": 32.0, f"{a}.rope.scaling.yarn_beta_slow": 1.0,
                     "tokenizer.ggml.pre": "gpt-4o", "general.file_type": 38})
    else:
        want.update({"tokenizer.ggml.pre": "qwen2", "general.file_type": 0 if s.expert_type == "F32" else 7})
        assert not any(k.startswith(f"{a}.rope.scaling") or "sliding_window" in k for k in kv)
    for k, v in want.items():
        assert kv[k] == pytest.approx(v) if isinstance(v, float) else kv[k] == v, k
    assert kv[f"{a}.attention.layer_norm_rms_epsilon"] == pytest.approx(s.rms_eps, rel=1e-6)
    toks = kv["tokenizer.ggml.tokens"]
    assert len(toks) == s.n_vocab == len(set(toks)) == len(kv["tokenizer.ggml.token_type"])
    bos, eos = kv["tokenizer.ggml.bos_token_id"], kv["tokenizer.ggml.eos_token_id"]
    if a == "gpt-oss":
        assert (toks[bos], toks[eos]) == ("<|startoftext|>", "<|return|>")
        assert {"<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|return|>", "<|call|>"} <= set(toks)
        from orc import chat
        assert chat.detect_chat_template(kv["tokenizer.chat_template"])[0] == "gpt-oss"
    else:
        assert (toks[bos], toks[eos]) == ("<|endoftext|>", "<|im_end|>")
    vocab = set(toks)
    for merge in kv["tokenizer.ggml.merges"]:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab and left + right in vocab, merge


@pytest.mark.parametrize("arch", ["gpt-oss", "qwen3moe"])
def test_hf_names_map_to_the_gguf_names(arch):
    """Every HF parameter of hf_state_dict maps, through gguf-py's TensorNameMap (what the
    converter's map_tensor_name uses), to the GGUF tensor it was made from."""
    s = synth_moe.spec(arch)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT_OSS if arch == "gpt-oss" else gguf.MODEL_ARCH.QWEN3MOE,
                                    s.n_layer)
    names = set(synth_moe.weights(s))
    for hf in synth_moe.hf_state_dict(s):
        base, _, suffix = hf.rpartition(".")
        if "experts." in hf:      # split by the converter: gate_up -> gate + up (+ ".bias")
            stem = base if suffix in ("weight", "bias") else hf
            stem = stem.replace("_bias", "")
            parts = ["gate_proj", "up_proj"] if "gate_up_proj" in stem else ["down_proj"]
            for part in parts:
                mapped = tmap.get_name(stem.replace("gate_up_proj", part))
                assert mapped and mapped + (".bias" if hf.endswith("_bias") else ".weight") in names, hf
            continue
        if hf.endswith(".sinks"):   # GptOssModel.filter_tensors appends ".weight"
            base, suffix = hf, "weight"
        mapped = tmap.get_name(base)
        assert mapped is not None and f"{mapped}.{suffix}" in names, hf


def convert_gpt_oss_experts(sd, i):
    """The converter's gpt-oss expert path (GptOssModel.modify_tensors, unquantized branch),
    from HF tensors to GGUF arrays, written here independently of synth_moe.hf_state_dict."""
    h = f"model.layers.{i}.mlp.experts."
    gu = sd[h + "gate_up_proj"].transpose(0, 2, 1)        # [X, 2F, E]
    gub = sd[h + "gate_up_proj_bias"]
    return {"ffn_gate_exps.weight": gu[:, ::2, :], "ffn_up_exps.weight": gu[:, 1::2, :],
            "ffn_gate_exps.bias": gub[..., ::2], "ffn_up_exps.bias": gub[..., 1::2],
            "ffn_down_exps.weight": sd[h + "down_proj"].transpose(0, 2, 1),
            "ffn_down_exps.bias": sd[h + "down_proj_bias"]}


def test_hf_layout_is_the_converters_inverse():
    for arch in ("gpt-oss", "qwen3moe"):
        s = synth_moe.spec(arch)
        w = {k: v[2] for k, v in synth_moe.weights(s).items()}
        sd = synth_moe.hf_state_dict(s)
        for i in range(s.n_layer):
            if arch == "gpt-oss":
                conv = convert_gpt_oss_experts(sd, i)
            else:  # Qwen2MoeModel.modify_tensors: gate_up [X, 2F, E] split on dim -2; down as is
                gu = sd[f"model.layers.{i}.mlp.experts.gate_up_proj"]
                conv = {"ffn_gate_exps.weight": gu[:, :s.n_ff_exp], "ffn_up_exps.weight": gu[:, s.n_ff_exp:],
                        "ffn_down_exps.weight": sd[f"model.layers.{i}.mlp.experts.down_proj"]}
            for k, v in conv.items():
                np.testing.assert_array_equal(v, w[f"blk.{i}.{k}"], err_msg=f"{arch} blk.{i}.{k}")
        np.testing.assert_array_equal(sd["lm_head.weight"], w["output.weight"])


# --------------------------------------------------------------------------- MXFP4

def test_mxfp4_matches_gguf_py():
    from gguf.quants import dequantize, quantize
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((64, 256)) * rng.uniform(1e-3, 10, (64, 1))).astype(np.float32)
    x[3, :32] = 0                                   # an all-zero block: e = 0
    x[4, 40] = 1e-30                                # tiny values
    mine = synth_moe.quantize_mxfp4(x)
    assert mine.shape == (64, 8 * 17)
    np.testing.assert_array_equal(mine, quantize(x, gguf.GGMLQuantizationType.MXFP4))
    raw = np.frombuffer(rng.bytes(4096 * 17), np.uint8).reshape(-1, 17 * 8).copy()
    raw[:, ::17] = rng.integers(0, 250, raw[:, ::17].shape)    # 12 * 2^(e-128) overflows float32 from e = 253
    raw[0, ::17] = np.arange(8) + np.array([0, 1, 2, 125, 126, 127, 128, 240])   # exponents incl. subnormal scales
    np.testing.assert_array_equal(synth_moe.dequantize_mxfp4(raw), dequantize(raw, gguf.GGMLQuantizationType.MXFP4))
    # ggml's element order: the low nibble of qs[j] is element j, the high nibble element j + 16
    blk = np.zeros((1, 17), np.uint8)
    blk[0, 0] = 128                                 # d = 2^0
    blk[0, 1] = 0x7 | (0xF << 4)                    # element 0: code 7 (12 * d), element 16: code 15 (-12 * d)
    v = dequantize(blk, gguf.GGMLQuantizationType.MXFP4)[0]
    assert v[0] == 12 and v[16] == -12 and not v[1:16].any() and not v[17:].any()


def test_mxfp4_round_trips_exactly_on_representable_values():
    from gguf.quants import dequantize
    rng = np.random.default_rng(6)
    n = 512
    codes = rng.integers(0, 16, (n, 32))
    codes[codes == 8] = 0                           # -0: requantizes as +0 (same value, other code)
    codes[np.arange(n), rng.integers(0, 32, n)] = rng.choice([6, 7, 14, 15], n)   # block max |kvalue| 8 or 12
    e = rng.integers(100, 150, n).astype(np.uint8)
    raw = np.empty((n, 17), np.uint8)
    raw[:, 0] = e
    raw[:, 1:] = codes[:, :16] | (codes[:, 16:] << 4)
    values = dequantize(raw.reshape(1, -1), gguf.GGMLQuantizationType.MXFP4)
    again = synth_moe.quantize_mxfp4(values)
    np.testing.assert_array_equal(again, raw.reshape(1, -1))            # the same bytes
    np.testing.assert_array_equal(dequantize(again, gguf.GGMLQuantizationType.MXFP4), values)
    # any float32 data: the quantizer's output re-quantizes to itself (its block maxima are codes
    # 8 or 12 in magnitude, and it never writes -0)
    x = (rng.standard_normal((8, 320)) * 3).astype(np.float32)
    q = synth_moe.quantize_mxfp4(x)
    np.testing.assert_array_equal(synth_moe.quantize_mxfp4(dequantize(q, gguf.GGMLQuantizationType.MXFP4)), q)


def test_hf_mxfp4_packing_and_the_converters_repack():
    """The OpenAI checkpoint packs element 2j in the low and 2j+1 in the high nibble of byte j,
    with the scale as 2^(s-127) and undoubled FP4 values; the converter's repack gives ggml blocks
    with the same values."""
    from gguf.quants import dequantize
    rng = np.random.default_rng(7)
    raw = np.frombuffer(rng.bytes(3 * 5 * 4 * 17), np.uint8).reshape(3, 5, 4 * 17).copy()
    raw[..., ::17] = rng.integers(110, 140, (3, 5, 4))
    blocks, scales = synth_moe.mxfp4_to_hf(raw)
    assert blocks.shape == (3, 5, 4, 16) and scales.shape == (3, 5, 4)
    np.testing.assert_array_equal(synth_moe.mxfp4_from_hf(blocks, scales), raw)
    ggml_values = dequantize(raw, gguf.GGMLQuantizationType.MXFP4)
    np.testing.assert_array_equal(synth_moe.hf_mxfp4_dequantize(blocks, scales), ggml_values)
    # a hand-made HF byte: low nibble code 2 (1.0) is element 0, high nibble code 9 (-0.5) element 1
    v = synth_moe.hf_mxfp4_dequantize(np.array([[0x92] + [0] * 15], np.uint8), np.array([127], np.uint8))
    assert v[0] == 1.0 and v[1] == -0.5 and not v[2:].any()
    torch = pytest.importorskip("torch", reason="torch: transformers' own MXFP4 dequantizer")
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    hf = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.float32)
    # transformers returns [.., cols, rows] (transposed for its matmul)
    np.testing.assert_array_equal(hf.numpy().transpose(0, 2, 1), ggml_values)


# --------------------------------------------------------------------------- benchmark writer

TINY_BENCH = {
    "gpt-oss-20b": dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_expert=4, n_expert_used=2, n_ff_exp=64,
                        n_ff=64, n_vocab=512),
    "qwen3-30b-a3b": dict(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, head_dim=64, n_expert=8, n_expert_used=2,
                          n_ff_exp=256, n_ff=512, n_vocab=640),
}


@pytest.mark.parametrize("bench", sorted(TINY_BENCH))
def test_bench_writer_tiny(tmp_path, bench):
    s = synth_moe.spec(bench, **TINY_BENCH[bench])
    seen = []
    path = synth_moe.write_bench_model(s, tmp_path / "b.gguf", chunk_bytes=4096,
                                       progress=lambda done, total: seen.append((done, total)))
    r, kv = fields(path)
    import dataclasses
    want = llama_cpp_tensors(s.arch, dataclasses.asdict(s))
    assert {t.name: ([int(x) for x in t.shape], t.tensor_type.name) for t in r.tensors} == want
    total = sum(int(t.n_bytes) for t in r.tensors)
    assert seen and seen[-1][1] == total and all(d <= t for d, t in seen) and len(seen) > len(r.tensors)
    assert os.path.getsize(path) >= total
    assert kv["general.architecture"] == s.arch and kv[f"{s.arch}.expert_count"] == s.n_expert
    types = {t.tensor_type.name for t in r.tensors}
    assert types == ({"F32", "Q8_0", "MXFP4"} if s.arch == "gpt-oss" else {"F32", "Q8_0", "Q4_K"})
    # valid blocks: every dequantized value finite, weights of a sane size, and the model runs
    for t in r.tensors:
        v = gguf.quants.dequantize(t.data, t.tensor_type)
        assert np.isfinite(v).all(), t.name
        assert 0 < np.abs(v).max() < 100, t.name
    m = numpy_moe.MoeModel(path)
    logits, tr = m.forward(np.arange(12) * 7 % s.n_vocab)
    assert np.isfinite(logits).all() and 0.1 < logits.std() < 100
    assert 0.1 < tr["blk.1.resid_post"].std() < 100
    # deterministic for given arguments
    same = synth_moe.write_bench_model(s, tmp_path / "d.gguf", chunk_bytes=4096)
    assert synth_moe.file_sha256(same) == synth_moe.file_sha256(path)


def test_bench_specs_have_the_real_shapes():
    g, q = synth_moe.BENCH_SPECS["gpt-oss-20b"], synth_moe.BENCH_SPECS["qwen3-30b-a3b"]
    assert (g.n_layer, g.n_embd, g.n_head, g.head_dim, g.n_head_kv, g.n_expert, g.n_expert_used, g.n_ff_exp,
            g.n_vocab) == (24, 2880, 64, 64, 8, 32, 4, 2880, 201088)
    assert (q.n_layer, q.n_embd, q.n_head, q.head_dim, q.n_head_kv, q.n_expert, q.n_expert_used, q.n_ff_exp,
            q.n_vocab) == (48, 2048, 32, 128, 4, 128, 8, 768, 151936)
    size = lambda s: sum(int(np.prod(shape)) // gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[t]][0] *  # noqa: E731
                         gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[t]][1]
                         for _, shape, t, _ in synth_moe.tensor_plan(s))
    assert 11.5e9 < size(g) < 12.5e9
    assert 17e9 < size(q) < 19e9


def test_bench_cli(tmp_path):
    """python -m tools.make_moe_bench_model with overrides: the real widths, fewer layers/experts."""
    import importlib
    cli = importlib.import_module("tools.make_moe_bench_model")
    path = cli.main(["qwen3-30b-a3b", str(tmp_path / "q.gguf"), "--layers", "1", "--experts", "8", "--vocab", "1024",
                     "--expert-type", "Q8_0", "--quiet"])
    r, kv = fields(path)
    assert kv["qwen3moe.embedding_length"] == 2048 and kv["qwen3moe.block_count"] == 1
    assert kv["qwen3moe.expert_count"] == 8 and kv["qwen3moe.expert_used_count"] == 8
    t = {x.name: x for x in r.tensors}
    assert t["blk.0.ffn_down_exps.weight"].tensor_type.name == "Q8_0"
    assert [int(v) for v in t["blk.0.ffn_down_exps.weight"].shape] == [768, 2048, 8]
    assert [int(v) for v in t["blk.0.attn_q.weight"].shape] == [2048, 32 * 128]
