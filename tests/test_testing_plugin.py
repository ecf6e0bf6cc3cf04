"""orc.testing assertions, GoldenStore, and the pytest plugin's golden fixture (run through
pytester in-process, against a throwaway rootdir)."""
import os
import re

import numpy as np
import pytest

import orc
from orc.testing import GoldenStore, assert_array_close, assert_logits_close, assert_trace_close

pytest_plugins = ["pytester"]


def _logits(seed=0, n=12, v=64):
    return np.random.default_rng(seed).standard_normal((n, v)).astype(np.float32) * 3


# --------------------------------------------------------------------------------------------
# assert_logits_close

def test_close_logits_pass_and_return_the_comparison():
    e = _logits()
    a = e + np.float32(1e-4) * _logits(1)
    r = assert_logits_close(a, e)
    assert r.ok and r.nmse < 1e-8


def test_failure_message_has_the_worst_positions_table():
    e = _logits()
    a = e.copy()
    a[9] += 4 * _logits(2)[9]  # position 9 is wrong
    with pytest.raises(AssertionError) as ei:
        assert_logits_close(a, e, msg="gpu vs cpu")
    msg = str(ei.value)
    assert msg.startswith("gpu vs cpu: logits not close")
    assert re.search(r"NMSE \S+ > 0.0001", msg)
    header = next(l for l in msg.splitlines() if "argmax a" in l)
    assert header.split() == ["pos", "NMSE", "max|a-b|", "argmax", "a", "argmax", "b", "top1", "top-k", "KL"]
    rows = msg.splitlines()[msg.splitlines().index(header) + 2:]
    first = rows[0].split()
    assert first[0] == "9"
    assert int(first[3]) == int(a[9].argmax()) and int(first[4]) == int(e[9].argmax())
    assert float(first[2]) == pytest.approx(float(np.abs(a[9] - e[9]).max()), rel=1e-3)


def test_nan_fails_even_with_loose_tolerances_and_is_located():
    e = _logits()
    a = e.copy()
    a[3, 11] = np.nan
    with pytest.raises(AssertionError, match=r"nan in a at position 3, index \[11\]"):
        assert_logits_close(a, e, nmse=1e9, top1=False)


def test_top1_where_and_kl_options():
    e = np.zeros((4, 10), np.float32)
    e[:, 2] = 1.0
    e[:, 3] = 0.999
    a = e.copy()
    a[1, 3] = 1.001  # flips the argmax at position 1 with a tiny error
    with pytest.raises(AssertionError, match=r"top-1 differs at 1/4 positions \(first: 1\)"):
        assert_logits_close(a, e, nmse=1e-2)
    assert_logits_close(a, e, nmse=1e-2, top1=False)
    assert_logits_close(a, e, nmse=1e-2, where=[0, 2, 3])
    assert_logits_close(a, e, nmse=1e-2, where=np.array([True, False, True, True]))
    assert_logits_close(a, e, nmse=1e-2, top1_tie=0.01)
    with pytest.raises(AssertionError, match="max KL"):
        assert_logits_close(a, e, nmse=1e-2, top1=False, kl=1e-9)
    with pytest.raises(ValueError, match="boolean mask"):
        assert_logits_close(a, e, where=np.array([True, False]))
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_logits_close(a[:2], e)


def test_assert_trace_close():
    t = {"embd": _logits(0), "blk.0.q": _logits(1), "logits": _logits(2)}
    assert_trace_close(dict(t), t)
    bad = dict(t, **{"blk.0.q": t["blk.0.q"] * 1.5})
    with pytest.raises(AssertionError, match="first divergence: blk.0.q at position 0"):
        assert_trace_close(bad, t)
    with pytest.raises(AssertionError, match="different hooks"):
        assert_trace_close({k: v for k, v in t.items() if k != "embd"}, t)
    assert_trace_close({k: v for k, v in t.items() if k != "embd"}, t, require_same_hooks=False)


def test_assert_array_close_modes():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert_array_close(x, x.copy(), exact=True)
    y = x.copy()
    y[2, 1] = 99
    with pytest.raises(AssertionError, match=r"1 of 12 element\(s\); first at \(2, 1\)"):
        assert_array_close(y, x, exact=True)
    with pytest.raises(AssertionError, match="dtypes differ"):
        assert_array_close(x.astype(np.int64), x, exact=True)
    f = np.array([0.0, 1.0])
    with pytest.raises(AssertionError, match="exact"):
        assert_array_close(np.array([-0.0, 1.0]), f, exact=True)  # bits, not ==
    g = _logits()
    with pytest.raises(AssertionError, match=r"max\|a-b\| \S+ > atol 0.001"):
        assert_array_close(g + 0.01, g, atol=1e-3)
    assert_array_close(g + 1e-4, g, atol=1e-3)
    h = g.copy()
    h[5, int(np.argsort(g[5])[-2])] = g[5].max() + 1e-3  # a small change that moves row 5's argmax
    assert_array_close(h, g, nmse=1e-2)
    with pytest.raises(AssertionError, match=r"(?s)argmax differs at 1/12 row\(s\).*argmax a"):
        assert_array_close(h, g, nmse=1e-2, top1=True)
    t = np.zeros((3, 2, 4))
    t[1, 1, 2] = np.nan
    with pytest.raises(AssertionError, match=r"nan in a at position 1, index \[1, 2\]"):
        assert_array_close(t, np.zeros((3, 2, 4)), atol=1e9)
    with pytest.raises(ValueError, match="give nmse"):
        assert_array_close(g, g)


# --------------------------------------------------------------------------------------------
# GoldenStore

def test_golden_store_roundtrip(tmp_path):
    folder = tmp_path / "golden"
    arr = _logits()
    with pytest.raises(AssertionError, match="does not exist.*update=True"):
        GoldenStore(folder).check("x", arr)
    w = GoldenStore(folder, update=True)
    w.check("x", arr)
    assert w.written == [str(folder / "x.npy")] and np.array_equal(np.load(folder / "x.npy"), arr)
    s = GoldenStore(folder)
    assert np.array_equal(s.check("x", arr + 1e-5), arr)  # default nmse 1e-6 for floats
    with pytest.raises(AssertionError, match=r"(?s)golden 'x' .*NMSE \S+ > 1e-06"):
        s.check("x", arr * 1.01)
    s.check("x", arr * 1.01, nmse=1e-3)
    with pytest.raises(AssertionError, match="exact"):
        s.check("x", arr + 1e-5, exact=True)
    with pytest.raises(AssertionError, match="shapes differ"):
        s.check("x", arr[:3])
    bad = arr.copy()
    bad[0, 0] = np.inf
    with pytest.raises(AssertionError, match="non-finite"):
        s.check("x", bad, nmse=1e9)


def test_golden_store_mappings_ints_and_refusals(tmp_path):
    w = GoldenStore(tmp_path, update=True)
    trace = {"blk.0.q": _logits(1), "ids": np.array([1, 2, 3])}
    w.check("trace", trace)
    assert os.path.exists(tmp_path / "trace.npz")
    s = GoldenStore(tmp_path)
    got = s.check("trace", trace)
    assert set(got) == {"blk.0.q", "ids"}
    with pytest.raises(AssertionError, match=r"(?s)\[.ids.\].*exact"):
        s.check("trace", dict(trace, ids=np.array([1, 2, 4])))  # ints default to exact
    with pytest.raises(AssertionError, match="keys differ"):
        s.check("trace", {"blk.0.q": trace["blk.0.q"]})
    with pytest.raises(ValueError, match="NaN/Inf"):
        w.check("nan", np.array([1.0, np.nan]))
    assert not os.path.exists(tmp_path / "nan.npy")
    for name in ["../x", "a/b", "", ".hidden", 3]:
        with pytest.raises(ValueError, match="golden name"):
            s.check(name, trace["ids"])


# --------------------------------------------------------------------------------------------
# the pytest plugin

TEST_FILE = """
import numpy as np
import os

def test_logits(golden):
    x = np.random.default_rng(0).standard_normal((6, 32)) * float(os.environ.get("SCALE", "1"))
    golden.check("logits", x, nmse=1e-6)
"""


@pytest.fixture
def project(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_mod=TEST_FILE)
    return pytester


def _run(pytester, *args):
    return pytester.runpytest("-p", "orc.pytest_plugin", *args)


def test_plugin_missing_golden_fails_and_says_how_to_create_it(project):
    res = _run(project)
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*golden 'logits' does not exist*--orc-update-golden test_mod.py::test_logits*"])
    assert not (project.path / "tests" / "golden").exists()


def test_plugin_update_then_compare(project, monkeypatch):
    res = _run(project, "--orc-update-golden")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*orc: wrote 1 golden file(s)*", "golden/test_mod/logits.npy"])
    path = project.path / "golden" / "test_mod" / "logits.npy"  # beside the test file
    assert np.array_equal(np.load(path), np.random.default_rng(0).standard_normal((6, 32)))

    _run(project).assert_outcomes(passed=1)

    monkeypatch.setenv("SCALE", "1.01")
    res = _run(project)
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*golden 'logits'*arrays not close*", "*NMSE*> 1e-06*", "*row*NMSE*max|a-b|*"])
    assert "wrote" not in res.stdout.str()


def test_plugin_goldens_live_beside_the_test_file_or_in_the_configured_folder(pytester):
    pytester.makeini("[pytest]\n")
    sub = pytester.mkdir("deep")
    (sub / "test_sub.py").write_text(TEST_FILE)
    _run(pytester, "--orc-update-golden").assert_outcomes(passed=1)
    assert (sub / "golden" / "test_sub" / "logits.npy").is_file()
    assert not (pytester.path / "tests").exists()
    # one folder for all, relative to the rootdir
    pytester.makeini("[pytest]\norc_golden_dir = tests/golden\n")
    res = _run(pytester, "--orc-update-golden")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["tests/golden/test_sub/logits.npy"])
    assert (pytester.path / "tests" / "golden" / "test_sub" / "logits.npy").is_file()
    _run(pytester).assert_outcomes(passed=1)


def test_failure_tables_show_token_text_with_a_tokenizer(tmp_path):
    from orc import synth

    path = synth.make_model(tmp_path / "m.gguf", synth.spec_for("qwen2", "Q8_0"))
    with orc.Model(path, device="cpu") as m:
        e = orc.Session(m, n_ctx=16).forward(m.tokenize("Hello world"))
        a = e.copy()
        a[1] *= -1  # position 1 is wrong: its argmax changes
        ia, ie = int(a[1].argmax()), int(e[1].argmax())
        text_a, text_e = repr(m.detokenize([ia])), repr(m.detokenize([ie]))
        with pytest.raises(AssertionError) as ei:
            assert_logits_close(a, e, tokenizer=m)
        row = next(line for line in str(ei.value).splitlines() if line.split()[:1] == ["1"])
        assert f"{ia} {text_a}" in row and f"{ie} {text_e}" in row, row
        with pytest.raises(AssertionError) as ei:
            assert_logits_close(a, e)
        assert text_a not in str(ei.value), "no tokenizer: ids only"
        store = GoldenStore(tmp_path / "g", update=True)
        store.check("lg", e)
        store = GoldenStore(tmp_path / "g", tokenizer=m.tokenizer)
        with pytest.raises(AssertionError, match=f"{ia} {re.escape(text_a)}"):
            store.check("lg", a, top1=True)


def test_plugin_registers_the_option_and_markers(project):
    res = _run(project, "--help")
    res.stdout.fnmatch_lines(["*--orc-update-golden*"])
    res = _run(project, "--markers")
    res.stdout.fnmatch_lines(["*gpu: needs a usable CUDA GPU*"])


def test_orc_exports_the_modules():
    assert orc.compare.compare_logits and orc.testing.assert_logits_close and orc.hooks.HOOK_STEPS
