"""The fast GPU path's kernels against float64 NumPy references.

- GEMV (cuda/gemv/): every supported weight type, n = 1..8 tokens, shapes chosen to hit every
  kernel path (rows not a multiple of a row group, rows shorter than a warp's 32 lane units,
  the column split with its combine kernel) and the real models' shapes; each fused variant
  (bias, residual in place or not, RMSNorm prologue, GLU with each activation and biases,
  mixture of experts with repeated, distinct and out-of-range expert ids). The reference
  is orc.dequantize's values in float64: the kernel must see exactly those weights, so the
  only error left is float32 accumulation (NMSE <= 1e-10). The output buffer is poisoned
  with NaN before each launch (every element must be written; padding past `rows` must stay
  untouched), and each launch is repeated and compared bit for bit.
- Flash attention (cuda/kernels/attention_flash.cu): head sizes, GQA ratios, windows,
  softcap, sinks, later chunks (pos[0] > 0), n from 1 to 600, against float64 on the same
  rounded K/V (and Q) values: NMSE <= 1e-5 (float16) / 1e-4 (bfloat16; P is rounded to the
  cache dtype for the P.V product).
- On the host (no GPU): the GEMV decoders themselves, group by group, against
  quant_decode.h (tests/c/test_gemv_decode.cpp).
Failures name the type, shape, n, variant and the first bad element.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import zlib

import numpy as np
import pytest

import orc
from orc import _orc

try:  # optional: quantize random floats where gguf-py can (the GPU machine may lack it)
    from gguf import GGMLQuantizationType as T
    from gguf import quants as gq
except ImportError:  # pragma: no cover - depends on the environment
    T = gq = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (elements per block, bytes per block) of the types with a GEMV kernel; cols must be a
# multiple of UNIT (the kernels' lane unit for the float types).
SIZES = {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
         "IQ4_NL": (32, 18), "MXFP4": (32, 17), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
         "Q5_K": (256, 176), "Q6_K": (256, 210), "IQ4_XS": (256, 136), "F16": (1, 2), "BF16": (1, 2),
         "F32": (1, 4)}
GEMV_TYPES = list(SIZES)
UNIT = {t: (16 if t in ("F16", "BF16") else 8 if t == "F32" else SIZES[t][0]) for t in GEMV_TYPES}
# byte offsets of the f16 scale fields (ggml-common.h), overwritten with finite values in random blocks
F16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "IQ4_NL": [0],
              "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_XS": [0]}
GGUF_QUANTIZES = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4"}
SCALE_DIV = {"Q4_K": 2, "Q5_K": 4, "Q6_K": 32, "IQ4_XS": 32}  # weights of order 1 in random blocks
ACTS = {"silu": 0, "gelu_tanh": 1, "swiglu_oai": 2}
NMSE_GEMV = 1e-10
INT16_TYPES = ("Q4_0", "Q5_0", "Q4_K", "Q6_K", "Q8_0", "MXFP4", "IQ4_NL")  # the GEMV's integer form (x_int16), one token


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def bf16_bits(x):
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def make_weights(name, n_rows, cols, rng):
    """Valid blocks of `name` for an [n_rows][cols] matrix (uint8, row-major)."""
    bs, ts = SIZES[name]
    if name in ("F32", "F16", "BF16"):
        x = (rng.standard_normal((n_rows, cols)) * 0.5).astype(np.float32)
        if name == "F32":
            return x.view(np.uint8).reshape(-1)
        if name == "F16":
            return x.astype(np.float16).view(np.uint8).reshape(-1)
        return bf16_bits(x).view(np.uint8).reshape(-1)
    if gq is not None and name in GGUF_QUANTIZES and n_rows * cols <= (1 << 24):
        x = (rng.standard_normal((n_rows, cols)) * 0.5).astype(np.float32)
        return np.ascontiguousarray(gq.quantize(x, T[name]), dtype=np.uint8).reshape(-1)
    nb = n_rows * cols // bs
    blocks = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    div = 128 * SCALE_DIV.get(name, 1)
    for off in F16_FIELDS.get(name, []):  # finite, never zero: +-[0.5, 1.5] / div
        d = (rng.uniform(0.5, 1.5, nb) * np.where(rng.random(nb) < 0.5, -1, 1) / div).astype(np.float16)
        blocks[:, off:off + 2] = d.view(np.uint8).reshape(-1, 2)
    if name == "MXFP4":
        blocks[:, 0] = rng.integers(118, 130, size=nb)
    return blocks.reshape(-1)


def weights_f64(name, w, n_mat, rows, cols):
    W = orc.dequantize(w, name, (n_mat * rows, cols)).astype(np.float64).reshape(n_mat, rows, cols)
    assert np.isfinite(W).all(), f"{name}: test weights not finite"
    return W


def act_ref(which, g, u):
    with np.errstate(over="ignore"):  # exp of very negative gates: inf, giving the exact limit 0
        return _act_ref(which, g, u)


def _act_ref(which, g, u):
    if which == 0:
        return g / (1.0 + np.exp(-g)) * u
    if which == 1:
        return 0.5 * g * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (g + 0.044715 * g ** 3))) * u
    g = np.minimum(g, 7.0)
    u = np.clip(u, -7.0, 7.0)
    return g / (1.0 + np.exp(-1.702 * g)) * (u + 1.0)


def round_int16(xs):
    """x' as the GEMV's integer form rounds it (gemv.cuh): per 16 columns, dx = 2^(e - 15) with e the
    frexp exponent of the largest magnitude, x' = clip(rint(x' / dx), +-32767) * dx; NaN where the
    block holds a NaN or an infinity, 0 where it is all zero."""
    b = xs.reshape(xs.shape[0], -1, 16)
    with np.errstate(invalid="ignore"):
        amax = np.abs(b).max(axis=2, keepdims=True)
        e = np.frexp(amax)[1]
        dx = np.ldexp(1.0, e - 15).astype(np.float32).astype(np.float64)  # as float32 holds it
        q = np.clip(np.rint(b / np.where(amax > 0, np.ldexp(1.0, e - 15), 1.0)), -32767, 32767)
        out = np.where(amax > 0, q * dx, 0.0)
        out = np.where(np.isfinite(b).all(axis=2, keepdims=True), out, np.nan)
    return out.reshape(xs.shape)


def gemv_ref(W, x, cols, *, Wu=None, bias=None, bias_up=None, res=None, norm_w=None, eps=1e-6, act=0, ids=None,
             x_int16=False):
    """float64 reference, [nvec][rows] (x_int16: of the integer form's rounded x')."""
    xs = x[:, :cols].astype(np.float64)
    if norm_w is not None:
        inv = 1.0 / np.sqrt((xs * xs).mean(axis=1, keepdims=True) + np.float64(np.float32(eps)))
        xs = xs * inv * norm_w.astype(np.float64)
    if x_int16:
        xs = round_int16(xs)
    n = xs.shape[0]
    pairs = [(t, 0) for t in range(n)] if ids is None else [(t, int(e)) for t in range(n) for e in ids[t]]
    bias2 = None if bias is None else bias.reshape(-1, W.shape[1]).astype(np.float64)
    bias_up2 = None if bias_up is None else bias_up.reshape(-1, W.shape[1]).astype(np.float64)
    out = []
    for t, e in pairs:
        g = W[e] @ xs[t]
        if bias2 is not None:
            g = g + bias2[e]
        if Wu is not None:
            u = Wu[e] @ xs[t]
            if bias_up2 is not None:
                u = u + bias_up2[e]
            g = act_ref(act, g, u)
        out.append(g)
    out = np.array(out)
    if res is not None:
        out = out + res[:, :W.shape[1]].astype(np.float64)
    return out


def nmse(got, ref):
    return float(np.sum((got.astype(np.float64) - ref) ** 2) / max(np.sum(ref ** 2), 1e-300))


def check_close(got, ref, tol, what):
    got = np.asarray(got)
    bad = ~np.isfinite(got)
    if bad.any():
        idx = np.argwhere(bad)[0]
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} outputs not finite (unwritten or NaN); "
                    f"first at {tuple(int(i) for i in idx)}: {got[tuple(idx)]!r}, want {ref[tuple(idx)]!r}")
    e = nmse(got, ref)
    if not e <= tol:
        d = np.abs(got.astype(np.float64) - ref)
        idx = np.unravel_index(np.argmax(d), d.shape)
        pytest.fail(f"{what}: NMSE {e:.3e} > {tol:.0e}; worst at {tuple(int(i) for i in idx)}: "
                    f"got {got[idx]!r}, want {ref[idx]!r}")


class Gemv:
    """One test matrix (or expert tensor) with its float64 reference values."""

    def __init__(self, name, rows, cols, n_expert=1, glu=False, seed=0):
        rng = rng_for("gemv", name, rows, cols, n_expert, glu, seed)
        self.name, self.rows, self.cols, self.n_expert = name, rows, cols, n_expert
        self.w = make_weights(name, n_expert * rows, cols, rng)
        self.W = weights_f64(name, self.w, n_expert, rows, cols)
        self.w_up = self.Wu = None
        if glu:
            self.w_up = make_weights(name, n_expert * rows, cols, rng)
            self.Wu = weights_f64(name, self.w_up, n_expert, rows, cols)
        self.rng = rng

    def run(self, n, *, x_pad=0, y_pad=0, bias=False, bias_up=False, res=None, norm=False, act=0, ids=None,
            x_scale=1.0, repeat=True, what="", x_int16=False, x=None):
        """Launch (twice when `repeat`: bit-identical) and check against the reference. x_int16: ask
        for the integer form; where the launch has it (INT16_TYPES, one token or MoE) the reference
        rounds x' as it does, and the result must sit at the rounding's distance from the float one."""
        rng, rows, cols = self.rng, self.rows, self.cols
        if x is None:
            x = (rng.standard_normal((n, cols + x_pad)) * x_scale).astype(np.float32)
        nvec = n if ids is None else ids.size
        y0 = np.full((nvec, rows + y_pad), np.nan, np.float32)
        kw = {}
        if self.w_up is not None:
            kw.update(w_up=self.w_up, act=act)
        nb = rows * (self.n_expert if ids is not None else 1)
        if bias:
            kw["bias"] = rng.standard_normal(nb).astype(np.float32)
        if bias_up:
            kw["bias_up"] = rng.standard_normal(nb).astype(np.float32)
        resv = None
        if res == "in_place":
            resv = rng.standard_normal(y0.shape).astype(np.float32)
            y0 = resv.copy()
            kw["res_in_y"] = True
        elif res == "separate":
            resv = rng.standard_normal(y0.shape).astype(np.float32)
            kw["res"] = resv
        if norm:
            kw["norm_w"] = rng.uniform(0.5, 1.5, cols).astype(np.float32)
            kw["eps"] = 1e-5
        if ids is not None:
            kw["ids"] = np.ascontiguousarray(ids, dtype=np.int32)
            kw["n_expert"] = self.n_expert
        label = (f"{self.name} {rows}x{cols}{' x%d experts' % self.n_expert if ids is not None else ''} n={n} "
                 f"{what}{' x_int16' if x_int16 else ''}").strip()
        integer = x_int16 and self.name in INT16_TYPES and (n == 1 or ids is not None)
        if x_int16:
            kw["x_int16"] = True
        y = _orc._gpu_gemv(self.w, self.name, rows, cols, x, y0, **kw)
        ref_args = dict(Wu=self.Wu, bias=kw.get("bias"), bias_up=kw.get("bias_up"), res=resv,
                        norm_w=kw.get("norm_w"), eps=kw.get("eps", 1e-6), act=act, ids=ids)
        ref = gemv_ref(self.W, x, cols, x_int16=integer, **ref_args)
        if integer and np.isfinite(ref).all():
            # its own definition: only float32 summation apart without a norm (x' = x exactly), plus
            # rare rounding flips where the kernel's float32 x' and the float64 one straddle a tie
            own = nmse(y[:, :rows], ref)
            assert own <= (1e-10 if norm else 1e-12), f"{label}: NMSE {own:.3e} against the integer form's definition"
            # and the rounding is there, at its size (x' to ~2^-16 of its block's largest value); with
            # a handful of outputs one value's cancellation can make that larger, so the upper bound
            # is loose there (device run 17: 1.1e-7 on a 1 x 96 Q4_0 product)
            away = nmse(y[:, :rows], gemv_ref(self.W, x, cols, **ref_args))
            hi = 1e-7 if y[:, :rows].size >= 16 else 1e-5
            assert 1e-12 <= away <= hi, f"{label}: NMSE {away:.3e} from the float form: the rounding not seen"
        if y_pad:
            pad = y[:, rows:]
            if res == "in_place":
                assert np.array_equal(pad, y0[:, rows:]), f"{label}: wrote past rows into the padding"
            else:
                assert np.isnan(pad).all(), f"{label}: wrote past rows into the padding"
        check_close(y[:, :rows], ref, NMSE_GEMV, label)
        if repeat:
            y2 = _orc._gpu_gemv(self.w, self.name, rows, cols, x, y0, **kw)
            assert np.array_equal(y.view(np.uint32), y2.view(np.uint32)), f"{label}: not bitwise repeatable"
        return y, ref


def shapes_for(name):
    """(rows, cols): tiny rows (lanes grouped 4-8 to a row), odd row counts, a column split."""
    u = UNIT[name]
    small = (37, 3 * u if u >= 32 else 6 * u)
    medium = (300, 1280 if u == 256 else 45 * u if u == 32 else 1040 if u == 16 else 1000)
    split = (64, 4096)
    return [(1, small[1]), small, medium, split]


# ---- the decoders, on the host ------------------------------------------------------------------

def test_gemv_decoders_match_quant_decode():
    """cuda/gemv/gemv_decode.cuh (the GEMV's weight decoders) against csrc/quant/quant_decode.h, group
    by group, for every block offset a type can have; runs without a GPU (the header is C++ g++
    compiles too)."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "test_gemv_decode")
        flags = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                 "-I" + os.path.join(ROOT, "csrc"), "-I" + os.path.join(ROOT, "cuda")]
        r = subprocess.run([cxx, *flags, os.path.join(ROOT, "tests/c/test_gemv_decode.cpp"), "-o", exe],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


# ---- the kernels on the host SIMT emulator (tests/c/simt_emu.h) -------------------------------------

SLOW = os.environ.get("ORC_SLOW") == "1"


def _run_emulated(source, args=(), defines=(), sanitize=False, timeout=900):
    """Compile tests/c/<source> with the kernel sources (ORC_SIMT_EMU) and run it; "ok" or the failures."""
    if orc.cuda_available() and os.environ.get("ORC_EMU") != "1":
        pytest.skip("a GPU is usable: the kernels run for real in the gpu tests (ORC_EMU=1 runs the emulator too)")
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "emu")
        flags = ["-std=c++17", "-O1", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
                 "-I" + os.path.join(ROOT, "csrc"), "-I" + os.path.join(ROOT, "cuda"),
                 "-I" + os.path.join(ROOT, "tests", "c"), *("-D" + x for x in defines)]
        if sanitize:
            flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        r = subprocess.run([cxx, *flags, os.path.join(ROOT, "tests", "c", source), "-o", exe], capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, r.stderr[-4000:]
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:detect_stack_use_after_return=0")
        r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.stdout + r.stderr)[-6000:]


def test_attention_decode_emulated():
    """The one-token / few-query attention kernel (cuda/kernels/attention_kernel.cuh) on the host
    emulator against float64: f32 / f16 / bf16 caches, head sizes 64, 128, 72, 36, GQA, windows,
    softcap, sinks, unsplit and split (merged by the last block; counts left at zero; empty
    splits bit-identical), K / V rows fetched ahead, and one query's q/k norms, rope and KV store
    done by the launch itself (the same bits, the same cache rows). See tests/c/test_attn_decode_emu.cpp."""
    _run_emulated("test_attn_decode_emu.cpp", sanitize=SLOW)


def test_moe_grouped_emulated():
    """The grouped expert products on the host emulator, on the same cases: the tile kernel
    (cuda/kernels/moe_grouped_kernel.cuh) and the pipelined one (moe_mma_kernel.cuh: stored blocks
    by cp.async, a float16 weight tile decoded per step, ldmatrix and mma.sync), each against
    float64 over the same float16 operands, NMSE <= 1e-10: Q4_K / Q6_K / Q8_0 / Q5_0 / MXFP4 with
    the fast decoders and without, unaligned rows, an expert bias, copies that must stop at the
    tensor's last byte, the pipelined kernel's blocks in both orders. See
    tests/c/test_moe_grouped_emu.cpp."""
    _run_emulated("test_moe_grouped_emu.cpp", sanitize=SLOW)


def test_moe_group_emulated():
    """A prefill's slots grouped by expert on the device (cuda/kernels/moe_group_kernel.cuh): order
    and tiles word for word the host grouping's (stable by slot, tiles of 64 / 1 / 7 / 1000), empty
    tiles up to the launch's bound, ids out of range sorted last with NaN output rows; router-like,
    uniform, one-expert and skewed ids, 1 to 5121 slots, 1 to 256 experts. See
    tests/c/test_moe_group_emu.cpp."""
    _run_emulated("test_moe_group_emu.cpp", sanitize=SLOW)


def test_moe_route_emulated():
    """The router's top-k (cuda/kernels/moe_route_kernel.cuh): the register fast path (n_expert <= 256,
    k <= 32) against the shared-memory kernel it replaces, bit for bit (ids and weights, NaN payloads
    included), on random, tied, NaN, infinite and signed-zero logits, both router kinds, with and
    without renormalisation; ids against a host stable top-k. See tests/c/test_moe_route_emu.cpp."""
    _run_emulated("test_moe_route_emu.cpp", sanitize=SLOW)


def test_gemv_kernels_emulated():
    """The real GEMV kernel source, every lane emulated on the host (barriers, shuffles, deferred
    cp.async, checked copy sources), the MoE gate/up launch's own router top-k included: a type of
    each block layout by default, all types with AddressSanitizer and UBSan when ORC_SLOW=1. See
    tests/c/test_gemv_emu.cpp for the cases."""
    if SLOW:
        _run_emulated("test_gemv_emu.cpp", sanitize=True)
    else:
        _run_emulated("test_gemv_emu.cpp", defines=["ORC_EMU_QUICK"])


def test_attention_flash_emulated():
    """The real flash-attention kernel source on the host emulator (ldmatrix and mma.sync with the
    PTX fragment layouts): head sizes, dtypes, GQA, windows, softcap, sinks, later chunks."""
    _run_emulated("test_attn_emu.cpp", sanitize=SLOW)


# ---- GEMV on the GPU ---------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("name", GEMV_TYPES)
def test_gemv_every_n_and_shape(name):
    for rows, cols in shapes_for(name):
        g = Gemv(name, rows, cols)
        for n in range(1, 9):
            g.run(n, repeat=n in (1, 8))


@pytest.mark.gpu
@pytest.mark.parametrize("name", GEMV_TYPES)
def test_gemv_fused_variants(name):
    u = UNIT[name]
    rows, cols = 67, (4 * u if u >= 32 else 40 * u)
    g = Gemv(name, rows, cols)
    for n in (1, 3, 8):
        g.run(n, bias=True, what="bias")
        g.run(n, res="in_place", what="residual in place")
        g.run(n, bias=True, res="separate", what="bias + residual")
        g.run(n, norm=True, x_scale=3.0, what="rmsnorm prologue")
        g.run(n, x_pad=5 * 4, y_pad=3, what="strided x and y")
    glu = Gemv(name, rows, cols, glu=True)
    for n in (1, 2, 8):
        for act_name, act in ACTS.items():
            glu.run(n, act=act, x_scale=2.0, what=f"GLU {act_name}")
        glu.run(n, act=2, bias=True, bias_up=True, norm=True, x_scale=2.0, what="GLU swiglu_oai + biases + norm")
        glu.run(n, act=0, norm=True, y_pad=2, what="GLU silu + norm, strided y")


@pytest.mark.gpu
@pytest.mark.parametrize("name", GEMV_TYPES)
def test_gemv_moe(name):
    u = UNIT[name]
    rows, cols, n_expert = 45, (3 * u if u >= 32 else 24 * u), 6
    plain = Gemv(name, rows, cols, n_expert=n_expert)
    glu = Gemv(name, rows, cols, n_expert=n_expert, glu=True)
    rng = rng_for("moe ids", name)
    for n, k in ((1, 1), (1, 4), (2, 4), (3, 8), (8, 2)):
        distinct = np.array([rng.permutation(n_expert)[:min(k, n_expert)].tolist() + [0] * max(0, k - n_expert)
                             for _ in range(n)], np.int32)
        repeated = rng.integers(0, 2, size=(n, k)).astype(np.int32)  # experts 0 and 1 only, repeated
        for ids, kind in ((distinct, "distinct ids"), (repeated, "repeated ids")):
            plain.run(n, ids=ids, what=f"MoE k={k} {kind}")
            plain.run(n, ids=ids, bias=True, norm=True, what=f"MoE k={k} {kind} + expert bias + norm")
            glu.run(n, ids=ids, act=0, what=f"MoE GLU silu k={k} {kind}")
            glu.run(n, ids=ids, act=2, bias=True, bias_up=True, x_scale=2.0,
                    what=f"MoE GLU swiglu_oai k={k} {kind} + biases")


def test_gemv_integer_form_types_are_the_kernels():
    """The kernel's own list of types with the integer form (its decoders' Q::QI, through
    _gpu_gemv_integer_form; no GPU needed) is the one this file holds it to."""
    try:
        has = {t for t in GEMV_TYPES if _orc._gpu_gemv_integer_form(t)}
    except orc.CudaError as e:
        pytest.skip(f"a build without CUDA: {e}")
    assert has == set(INT16_TYPES)


@pytest.mark.gpu
@pytest.mark.parametrize("name", INT16_TYPES)
def test_gemv_integer_form(name):
    """x_int16 (gemv.cuh's integer form: x' rounded to int16 per 16 columns, exact int32 dot products,
    one token): every shape, the fused variants and MoE against the float64 product with x' rounded
    as defined; more tokens keep the float form (bitwise the same as without x_int16)."""
    u = UNIT[name]
    for rows, cols in shapes_for(name):
        g = Gemv(name, rows, cols)
        g.run(1, x_int16=True)
        g.run(1, x_int16=True, norm=True, bias=True, res="in_place", x_scale=3.0, what="norm + bias + residual")
        x = g.rng.standard_normal((3, cols)).astype(np.float32)
        y0 = np.full((3, rows), np.nan, np.float32)
        a = _orc._gpu_gemv(g.w, name, rows, cols, x, y0)
        b = _orc._gpu_gemv(g.w, name, rows, cols, x, y0, x_int16=True)
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), f"{name} n=3: x_int16 must not apply"
    glu = Gemv(name, 67, 4 * u, glu=True)
    for act in ACTS.values():
        glu.run(1, act=act, x_scale=2.0, x_int16=True, what=f"GLU act {act}")
    glu.run(1, act=2, bias=True, bias_up=True, norm=True, x_scale=2.0, x_int16=True, what="GLU oai + biases + norm")
    moe = Gemv(name, 45, 3 * u, n_expert=6, glu=True)
    ids = np.array([[0, 3, 5, 1], [2, 2, 4, 0], [5, 1, 0, 3]], np.int32)
    moe.run(3, ids=ids, act=0, x_int16=True, what="MoE GLU k=4")
    # special blocks: all zero, tiny, one value far above the rest, a max that rounds up to 2^15
    cols = 4 * u
    plain = Gemv(name, 33, cols)
    x = plain.rng.standard_normal((1, cols)).astype(np.float32)
    x[0, :16] = 0
    x[0, 16:32] *= 1e-30
    x[0, 40] = 3e4
    x[0, 64:80] *= 0.1
    x[0, 70] = 0.99999
    plain.run(1, x=x, x_int16=True, what="zero / tiny / wide / clamped blocks")
    x2 = x.copy()
    x2[0, 20] = np.inf
    y = _orc._gpu_gemv(plain.w, name, 33, cols, x2, np.zeros((1, 33), np.float32), x_int16=True)
    assert np.isnan(y).all(), f"{name}: an inf in x must give NaN in the integer form"


@pytest.mark.gpu
def test_gemv_moe_bad_expert_id_gives_nan():
    g = Gemv("Q8_0", 40, 64, n_expert=3)
    x = rng_for("bad id").standard_normal((2, 64)).astype(np.float32)
    ids = np.array([[0, 7], [-1, 2]], np.int32)
    y = _orc._gpu_gemv(g.w, "Q8_0", 40, 64, x, np.zeros((4, 40), np.float32), ids=ids, n_expert=3)
    assert np.isnan(y[1]).all() and np.isnan(y[2]).all(), "an out-of-range expert id must give NaN"
    ref = gemv_ref(g.W, x, 64, ids=np.array([[0, 0], [0, 2]]))
    check_close(y[[0, 3]], ref[[0, 3]], NMSE_GEMV, "Q8_0 MoE rows with valid ids next to bad ones")


@pytest.mark.gpu
@pytest.mark.parametrize("case", [
    # Qwen2.5-0.5B: q/o, k/v, gate/up, down, and the 151936-row output
    ("Q8_0", 896, 896), ("Q5_0", 896, 896), ("Q4_0", 128, 896), ("Q8_0", 4864, 896), ("Q6_K", 896, 4864),
    ("Q8_0", 151936, 896),
    # Llama-3-8B: q, k/v, up, down
    ("Q4_K", 4096, 4096), ("Q6_K", 1024, 4096), ("Q4_K", 14336, 4096), ("Q4_K", 4096, 14336),
    ("Q5_K", 4096, 14336),
], ids=lambda c: "%s-%dx%d" % c)
def test_gemv_real_shapes(case):
    name, rows, cols = case
    g = Gemv(name, rows, cols)
    g.run(1, what="real shape")
    if rows * cols <= 4096 * 4096:
        g.run(4, bias=True, res="in_place", what="real shape, bias + residual in place")
        g.run(8, norm=True, what="real shape, norm")


@pytest.mark.gpu
def test_gemv_real_moe_shapes():
    """gpt-oss-20b experts (2880 x 2880 MXFP4, SwiGLU-OAI with biases, top-4) and Qwen3-30B-A3B
    experts (768 x 2048 gate/up and 2048 x 768 down, Q4_K, top-8), with fewer experts stored."""
    oss = Gemv("MXFP4", 2880, 2880, n_expert=5, glu=True)
    oss.run(1, ids=np.array([[4, 0, 2, 1]], np.int32), act=2, bias=True, bias_up=True, norm=True,
            what="gpt-oss experts")
    oss_down = Gemv("MXFP4", 2880, 2880, n_expert=5)
    oss_down.run(2, ids=np.array([[4, 0, 2, 1], [3, 3, 0, 4]], np.int32), bias=True, what="gpt-oss down")
    ids8 = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0]], np.int32)
    q3 = Gemv("Q4_K", 768, 2048, n_expert=8, glu=True)
    q3.run(2, ids=ids8, act=0, norm=True, what="Qwen3 gate/up experts")
    q3d = Gemv("Q4_K", 2048, 768, n_expert=8)
    q3d.run(1, ids=ids8[:1], what="Qwen3 down experts")


@pytest.mark.gpu
def test_gemv_errors():
    w = np.zeros(144, np.uint8)
    x = np.zeros((1, 256), np.float32)
    y = np.zeros((1, 1), np.float32)
    with pytest.raises(ValueError, match="multiple|block"):
        _orc._gpu_gemv(np.zeros(144, np.uint8), "Q4_K", 1, 250, np.zeros((1, 250), np.float32), y)
    with pytest.raises(ValueError, match="bytes"):
        _orc._gpu_gemv(np.zeros(100, np.uint8), "Q4_K", 1, 256, x, y)
    with pytest.raises(ValueError, match="no GEMV kernel|IQ2_XXS"):
        _orc._gpu_gemv(np.zeros(66, np.uint8), "IQ2_XXS", 1, 256, x, y)
    with pytest.raises(ValueError, match="1..8"):
        _orc._gpu_gemv(w, "Q4_K", 1, 256, np.zeros((9, 256), np.float32), np.zeros((9, 1), np.float32))
    with pytest.raises(ValueError, match="y must be"):
        _orc._gpu_gemv(w, "Q4_K", 2, 128 * 2, x, y)
    with pytest.raises(TypeError, match="float32"):
        _orc._gpu_gemv(w, "Q4_K", 1, 256, x.astype(np.float64), y)
    with pytest.raises(ValueError, match="activation"):
        _orc._gpu_gemv(w, "Q4_K", 1, 256, x, y, w_up=w, act=7)


# ---- flash attention ----------------------------------------------------------------------------------

def attn_inputs(case, rng):
    n, pos0, nh, nkv, D, dt = case["n"], case["pos0"], case["n_head"], case["n_head_kv"], case["D"], case["dtype"]
    kv_base = case.get("kv_base", 3)
    n_kv = kv_base + pos0 + n + 5
    q = rng.standard_normal((n, nh * D)).astype(np.float32)
    k = rng.standard_normal((n_kv, nkv * D)).astype(np.float32)
    v = rng.standard_normal((n_kv, nkv * D)).astype(np.float32)
    if dt == "float16":
        kb, vb = k.astype(np.float16).view(np.uint16), v.astype(np.float16).view(np.uint16)
        kf, vf = kb.view(np.float16).astype(np.float64), vb.view(np.float16).astype(np.float64)
        qf = q.astype(np.float16).astype(np.float64)
    else:
        kb, vb = bf16_bits(k), bf16_bits(v)
        kf, vf = bf16_value(kb).astype(np.float64), bf16_value(vb).astype(np.float64)
        qf = bf16_value(bf16_bits(q)).astype(np.float64)
    pos = (pos0 + np.arange(n)).astype(np.int32)
    kvb = np.full(n, kv_base, np.int32)
    sinks = rng.standard_normal(nh).astype(np.float32) * 2 if case.get("sinks") else None
    return q, kb, vb, qf, kf, vf, pos, kvb, sinks


def attn_ref(qf, kf, vf, pos, kv_base, nh, nkv, D, scale, softcap, window, sinks):
    n = qf.shape[0]
    G = nh // nkv
    out = np.zeros((n, nh * D))
    hi = pos.astype(np.int64)
    lo = np.maximum(0, hi - window + 1) if window > 0 else np.zeros_like(hi)
    j0, j1 = int(lo.min()), int(hi.max())
    j = np.arange(j0, j1 + 1)
    valid = (j[None, :] >= lo[:, None]) & (j[None, :] <= hi[:, None])
    for h in range(nh):
        g = h // G
        K = kf[kv_base + j0:kv_base + j1 + 1, g * D:(g + 1) * D]
        V = vf[kv_base + j0:kv_base + j1 + 1, g * D:(g + 1) * D]
        s = scale * (qf[:, h * D:(h + 1) * D] @ K.T)
        if softcap > 0:
            s = softcap * np.tanh(s / softcap)
        s = np.where(valid, s, -np.inf)
        m = s.max(axis=1)
        if sinks is not None:
            m = np.maximum(m, float(sinks[h]))
        p = np.exp(s - m[:, None])
        den = p.sum(axis=1) + (np.exp(float(sinks[h]) - m) if sinks is not None else 0.0)
        out[:, h * D:(h + 1) * D] = (p @ V) / den[:, None]
    return out


def _c(n, pos0, n_head, n_head_kv, D, dtype, window=0, softcap=0.0, sinks=False, **kw):
    return dict(n=n, pos0=pos0, n_head=n_head, n_head_kv=n_head_kv, D=D, dtype=dtype, window=window,
                softcap=softcap, sinks=sinks, **kw)


ATTN_CASES = [
    *[_c(70, 0, 4, 2, D, dt) for D in (64, 80, 96, 128, 256) for dt in ("float16", "bfloat16")],
    _c(1, 0, 2, 1, 64, "float16"), _c(1, 200, 4, 4, 128, "bfloat16"), _c(2, 5, 8, 2, 128, "float16"),
    _c(63, 0, 14, 2, 64, "float16"), _c(64, 0, 14, 2, 64, "float16"), _c(65, 33, 14, 2, 64, "bfloat16"),
    _c(130, 70, 32, 8, 128, "float16"),                                  # Llama-3 heads, a later chunk
    _c(100, 0, 6, 1, 96, "float16", window=17),                          # sliding window
    _c(90, 60, 8, 4, 256, "bfloat16", window=40, softcap=50.0),          # gemma-style
    _c(80, 10, 8, 8, 64, "float16", sinks=True),                         # gpt-oss sinks
    _c(50, 300, 8, 2, 64, "bfloat16", window=128, sinks=True),           # sinks + window, pos0 > window
    _c(40, 0, 4, 4, 80, "float16", softcap=30.0, kv_base=0),
    _c(600, 100, 14, 2, 64, "float16"),                                  # Qwen2.5-0.5B prompt chunk
    _c(600, 0, 8, 8, 128, "bfloat16", window=256),
]


@pytest.mark.gpu
@pytest.mark.parametrize("case", ATTN_CASES, ids=lambda c: "n%d-p%d-h%d-%d-D%d-%s-w%d-c%g%s" % (
    c["n"], c["pos0"], c["n_head"], c["n_head_kv"], c["D"], c["dtype"][0:2], c["window"], c["softcap"],
    "-sinks" if c["sinks"] else ""))
def test_attention_flash(case):
    rng = rng_for("attn", sorted(case.items()))
    q, kb, vb, qf, kf, vf, pos, kvb, sinks = attn_inputs(case, rng)
    nh, nkv, D = case["n_head"], case["n_head_kv"], case["D"]
    scale = (8.0 if case["softcap"] else 1.0) / np.sqrt(D)  # with a softcap, scores that reach it
    poison = np.full((case["n"], nh * D), np.nan, np.float32)
    kw = dict(softcap=case["softcap"], window=case["window"], sinks=sinks, out=poison)
    out = _orc._gpu_attention_flash(q, kb, vb, pos, kvb, nh, nkv, D, case["dtype"], scale, **kw)
    ref = attn_ref(qf, kf, vf, pos, int(kvb[0]), nh, nkv, D, scale, case["softcap"], case["window"], sinks)
    tol = 1e-5 if case["dtype"] == "float16" else 1e-4
    check_close(out, ref, tol, f"flash attention {case}")
    out2 = _orc._gpu_attention_flash(q, kb, vb, pos, kvb, nh, nkv, D, case["dtype"], scale, **kw)
    assert np.array_equal(out.view(np.uint32), out2.view(np.uint32)), f"{case}: not bitwise repeatable"


@pytest.mark.gpu
def test_attention_flash_errors():
    q = np.zeros((2, 64), np.float32)
    k = v = np.zeros((4, 64), np.uint16)
    pos, kvb = np.array([0, 1], np.int32), np.zeros(2, np.int32)
    with pytest.raises(ValueError, match="not supported"):
        _orc._gpu_attention_flash(q, k, v, pos, kvb, 1, 1, 64, "float32", 1.0)
    with pytest.raises(ValueError, match="not supported"):
        _orc._gpu_attention_flash(np.zeros((2, 48), np.float32), np.zeros((4, 48), np.uint16),
                                  np.zeros((4, 48), np.uint16), pos, kvb, 1, 1, 48, "float16", 1.0)
    with pytest.raises(ValueError, match="outside"):
        _orc._gpu_attention_flash(q, k, v, np.array([0, 9], np.int32), kvb, 1, 1, 64, "float16", 1.0)
    with pytest.raises(ValueError, match="n_head"):
        _orc._gpu_attention_flash(q, k, v, pos, kvb, 1, 2, 64, "float16", 1.0)


def test_kernel_entries_parse_every_keyword():
    """Every keyword of every entry point parses (CPython checks the keyword lists only when
    keywords are used); without a GPU each call then fails with CudaError, after the checks."""
    if orc.cuda_available():
        pytest.skip("a GPU is usable here: the gpu tests call these entries for real")
    w = np.zeros(2 * 144, np.uint8)
    x = np.zeros((2, 256), np.float32)
    y = np.zeros((2, 2), np.float32)
    common = dict(w_up=w, bias=np.zeros(2, np.float32), bias_up=np.zeros(2, np.float32),
                  res=np.zeros((2, 2), np.float32), res_in_y=False, norm_w=np.ones(256, np.float32), eps=1e-5,
                  act=2, ids=None, n_expert=0)
    q, kc = np.zeros((3, 128), np.float32), np.zeros((8, 64), np.uint16)
    pos, kvb = np.arange(3, dtype=np.int32), np.zeros(3, np.int32)
    akw = dict(softcap=30.0, window=4, sinks=np.zeros(2, np.float32), out=np.zeros((3, 128), np.float32))
    calls = [
        lambda: _orc._gpu_gemv(w, "Q4_K", 2, 256, x, y, **common),
        lambda: _orc._gpu_gemv_bench(w, "Q4_K", 2, 256, x, y, repeats=3, **common),
        lambda: _orc._gpu_gemv(np.zeros(6 * 144, np.uint8), "Q4_K", 2, 256, x, np.zeros((4, 2), np.float32),
                               ids=np.array([[0, 1], [2, 2]], np.int32), n_expert=3),
        lambda: _orc._gpu_attention_flash(q, kc, kc, pos, kvb, 2, 1, 64, "bfloat16", 0.125, **akw),
        lambda: _orc._gpu_attention_flash_bench(q, kc, kc, pos, kvb, 2, 1, 64, "float16", 0.125, repeats=2, **akw),
        lambda: _orc._gpu_copy_bench(1 << 20, 3),
        lambda: _orc._gpu_gemm_bench(256, 256, 256, 3),
    ]
    for call in calls:
        with pytest.raises(orc.CudaError):
            call()


def test_kernel_entries_without_gpu_say_why():
    if orc.cuda_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(orc.CudaError):
        _orc._gpu_gemv(np.zeros(144, np.uint8), "Q4_K", 1, 256, np.zeros((1, 256), np.float32),
                       np.zeros((1, 1), np.float32))
    with pytest.raises(orc.CudaError):
        _orc._gpu_copy_bench(1 << 20, 1)
