"""The CPU backend's weights="quantized": rows of GGUF blocks decoded in registers
(csrc/backend/cpu_dot.c) must give bit for bit what dequantizing the row and taking the float32
dot product gives, so the quantized CPU path computes exactly the float32 reference."""
import numpy as np
import pytest

import orc
from orc import _orc, synth

# The types cpu_dot.c decodes in registers, with a row width of whole blocks that is not a
# multiple of 256 where the block allows (so rows end mid-"super-block" of a 256-wide layout).
VECTORIZED = {"Q4_0": 544, "Q4_1": 544, "Q5_0": 544, "Q5_1": 544, "Q8_0": 544, "Q4_K": 512, "Q5_K": 512,
              "Q6_K": 512, "IQ4_NL": 544, "MXFP4": 544}

# float16 scales no random draw makes: NaN with a payload, -NaN, +-inf, -0, subnormals, the largest half.
SPECIAL_HALVES = [0x7E01, 0xFC07, 0x7C00, 0xFC00, 0x8000, 0x0001, 0x03FF, 0x7BFF]


def blocks_with_specials(type_name, rows, cols, seed):
    """Random blocks of `type_name`, [rows] x [cols] elements, with special scales planted in
    the first blocks of the first rows (E8M0 extremes for MXFP4)."""
    _, blk, tsz = synth.GGML_TYPES[type_name]
    raw = np.frombuffer(synth.random_blocks(np.random.default_rng(seed), type_name, rows * cols, 0.05),
                        np.uint8).copy().reshape(rows, cols // blk, tsz)
    if type_name == "MXFP4":
        for i, e in enumerate([0, 1, 2, 127, 128, 253, 254, 255]):
            raw[i % rows, i // rows, 0] = e
    else:
        for off in synth._SCALE_FIELDS[type_name]:
            for i, h in enumerate(SPECIAL_HALVES):
                raw[i % rows, i // rows, off:off + 2] = np.frombuffer(np.uint16(h).tobytes(), np.uint8)
    return raw.reshape(-1)


@pytest.mark.parametrize("type_name", sorted(VECTORIZED))
def test_row_products_are_bitwise_the_dequantized_dot(type_name):
    rows, cols = 40, VECTORIZED[type_name]
    w = blocks_with_specials(type_name, rows, cols, seed=len(type_name))
    x = np.random.default_rng(3).standard_normal(cols).astype(np.float32)
    x[::7] *= 1e3  # some large inputs, and negative zeros, beside the normal draws
    x[5::11] = -0.0
    fused, ref, decoded = _orc._cpu_row_products(w, type_name, rows, cols, x)
    if fused is None:
        pytest.skip("this CPU has no AVX2: quantized rows go through quant.c and the float32 dot")
    deq = orc.dequantize(w, type_name, (rows, cols))
    np.testing.assert_array_equal(decoded.view(np.uint32), deq.view(np.uint32))  # NaN payloads too
    np.testing.assert_array_equal(fused.view(np.uint32), ref.view(np.uint32))
    # the data can tell a wrong decoder: finite, varied products in the rows without specials
    clean = ref[8:]
    assert np.isfinite(clean).all() and np.unique(clean).size == clean.size
    assert not np.isfinite(ref[:8]).all()  # the NaN/inf scales reach their rows' products


def test_row_products_refuse_bad_sizes():
    with pytest.raises(ValueError, match="must hold"):
        _orc._cpu_row_products(np.zeros(10, np.uint8), "Q4_0", 1, 32, np.zeros(32, np.float32))
    with pytest.raises(orc.OrcError, match="multiple"):
        _orc._cpu_row_products(np.zeros(18, np.uint8), "Q4_0", 1, 30, np.zeros(30, np.float32))
    with pytest.raises(ValueError, match="2\\^30"):  # sizes whose byte count would wrap
        _orc._cpu_row_products(np.zeros(18, np.uint8), "Q8_0", 1 << 24, 1 << 58, np.zeros(32, np.float32))


@pytest.fixture(scope="module")
def random_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("cpuq")
    return {t: synth.random_llama_model(d / f"{t}.gguf", n_embd=256 if t.endswith("_K") else 160, n_layer=2,
                                        n_head=4, n_head_kv=2, n_ff=512 if t.endswith("_K") else 352, n_vocab=320,
                                        weight_type=t, scale=0.02)
            for t in VECTORIZED}


@pytest.mark.parametrize("type_name", sorted(VECTORIZED))
def test_quantized_decode_on_cpu_is_bitwise_the_float32_weights(random_models, type_name):
    """Prefill (rows decoded once for every token) and single-token steps (rows multiplied
    without being written) both equal the float32-weights model's logits bit for bit."""
    ids = [int(t) for t in np.random.default_rng(5).integers(0, 320, 6)]
    with orc.Model(random_models[type_name], device="cpu") as a, \
            orc.Model(random_models[type_name], device="cpu", weights="quantized") as b:
        sa, sb = orc.Session(a, n_ctx=16), orc.Session(b, n_ctx=16)
        la, lb = sa.forward(ids, "last"), sb.forward(ids, "last")
        steps = [(la, lb)]
        for _ in range(4):
            tok = int(np.argmax(la))
            la, lb = sa.forward([tok], "last"), sb.forward([tok], "last")
            steps.append((la, lb))
    for la, lb in steps:
        assert np.isfinite(la).all() and la.std() > 0
        np.testing.assert_array_equal(la, lb)


def test_blocks_without_a_vector_decoder_load_as_float32(tmp_path):
    """Q3_K has no vector decoder here: with weights="quantized" its matrices are dequantized to
    float32 at load (a scalar decode of every row at every step would be slower), so the model
    holds no blocks and computes exactly what weights="dequantized" computes."""
    path = synth.random_llama_model(tmp_path / "q3k.gguf", n_embd=256, n_layer=2, n_head=4, n_head_kv=2,
                                    n_ff=512, n_vocab=320, weight_type="Q3_K", scale=0.02)
    with orc.Model(path, device="cpu", weights="quantized") as q, \
            orc.Model(path, device="cpu", weights="dequantized") as d:
        mq, md = q.memory(), d.memory()
        assert mq["quantized"] == 0 and mq["weights"] == md["weights"] > 0
        sq, sd = orc.Session(q, n_ctx=16), orc.Session(d, n_ctx=16)
        lq, ld = sq.forward([1, 2, 3], "last"), sd.forward([1, 2, 3], "last")
        assert np.isfinite(ld).all() and ld.std() > 0
        np.testing.assert_array_equal(lq, ld)
        np.testing.assert_array_equal(sq.forward([4], "last"), sd.forward([4], "last"))


@pytest.mark.parametrize("type_name", ["Q4_K", "Q8_0"])
def test_thread_counts_give_the_same_bits(random_models, type_name):
    """One thread, every core, and more threads than cores (the pool then sleeps instead of
    spinning between loops): the same logits, bit for bit, at prefill and at each step."""
    ids = [int(t) for t in np.random.default_rng(9).integers(0, 320, 5)]
    outs = []
    for n_threads in (1, 0, 8):
        with orc.Model(random_models[type_name], device="cpu", n_threads=n_threads) as m:
            s = orc.Session(m, n_ctx=16)
            got = [s.forward(ids, "last")]
            for _ in range(3):
                got.append(s.forward([int(np.argmax(got[-1]))], "last"))
            outs.append(np.stack(got))
    assert np.isfinite(outs[0]).all()
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_row_products_from_two_threads_on_shared_arrays():
    """_cpu_row_products runs without the GIL: two threads on the same arrays get the same bits."""
    import threading
    rows, cols = 64, 512
    w = np.frombuffer(synth.random_blocks(np.random.default_rng(1), "Q4_K", rows * cols, 0.05), np.uint8).copy()
    x = np.random.default_rng(2).standard_normal(cols).astype(np.float32)
    want = _orc._cpu_row_products(w, "Q4_K", rows, cols, x)[1]
    got, errors = [], []

    def run():
        try:
            for _ in range(50):
                got.append(_orc._cpu_row_products(w, "Q4_K", rows, cols, x))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=run) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(got) == 100
    for fused, ref, _ in got:
        np.testing.assert_array_equal(ref.view(np.uint32), want.view(np.uint32))
        if fused is not None:
            np.testing.assert_array_equal(fused.view(np.uint32), want.view(np.uint32))
