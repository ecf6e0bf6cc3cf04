"""The type stubs match the compiled module, and orc's Python API is annotated and documented."""
import ast
import builtins
import inspect
import os

import pytest

import orc
from orc import _orc

PKG = os.path.dirname(orc.__file__)


def _stub_names():
    with open(os.path.join(PKG, "_orc.pyi")) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names, tree


def test_stub_names_match_the_extension():
    names, _ = _stub_names()
    runtime = {n for n in dir(_orc) if not (n.startswith("__") and n.endswith("__"))}
    assert names - runtime == set(), "in _orc.pyi but not in the extension"
    assert runtime - names == set(), "in the extension but not in _orc.pyi: add stubs"


def test_stub_exception_bases_match():
    _, tree = _stub_names()
    bases = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    for cls, stub_bases in bases.items():
        rt = getattr(_orc, cls)
        for b in stub_bases:
            assert issubclass(rt, getattr(_orc, b, None) or getattr(builtins, b)), (cls, b)


def test_package_is_marked_typed():
    assert os.path.exists(os.path.join(PKG, "py.typed"))


@pytest.mark.parametrize("module", [orc.compare, orc.testing, orc.hooks, orc.perplexity, orc.invariance,
                                    orc.patching])
def test_public_api_is_annotated_and_documented(module):
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            missing = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
            assert not missing, f"{module.__name__}.{name}: parameters without annotations: {missing}"
            assert sig.return_annotation is not inspect.Signature.empty, f"{module.__name__}.{name}: no return type"


def _stub_members(cls_node):
    out = set()
    for n in cls_node.body:
        if isinstance(n, ast.FunctionDef):
            out.add(n.name)
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
            out.add(n.target.id)
    return out


def test_stub_class_members_match_the_extension():
    """Every method and attribute of each extension class is in the stub, and nothing more."""
    _, tree = _stub_names()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or issubclass(getattr(_orc, node.name), BaseException):
            continue
        rt = getattr(_orc, node.name)
        stub = _stub_members(node) - {"__init__", "__enter__", "__exit__"}
        runtime = {n for n in vars(rt) if not n.startswith("__")}
        assert stub - runtime == set(), f"{node.name}: in _orc.pyi but not in the extension"
        assert runtime - stub == set(), f"{node.name}: in the extension but not in _orc.pyi"


def test_model_and_session_public_api_is_documented():
    for cls in (orc.Model, orc.Session, orc.Step):
        assert inspect.getdoc(cls)
        for name, obj in vars(cls).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or isinstance(obj, property)):
                continue
            assert inspect.getdoc(obj), f"orc.{cls.__name__}.{name} has no docstring"
