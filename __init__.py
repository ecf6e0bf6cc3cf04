"""Not part of the package: the root of orc's source checkout (the package is orc/ below).

Why this file exists. When the checkout's folder is named `orc` and the current directory is
the folder that holds it (`git clone ... && python -c "import orc"`), Python's path search finds
the checkout folder first. Without an __init__.py it would become an empty *namespace package*
named orc, and because pip's editable install (`pip install -e .`) resolves `orc` through a
finder that runs only after the path search, that empty package would win:
`module 'orc' has no attribute 'Session'`.

With this file, the checkout folder is imported as a regular module named orc whose only job is
to step aside: it finds the orc that Python would have imported without the checkout's parent
folder on the path (the installed or editable one) and puts it in its place; if there is none,
it loads the package of this checkout (orc/ below). Imported any other way (a checkout not named
orc, or run from inside it) this file is never executed.
"""
import importlib.machinery as _machinery
import importlib.util as _util
import os as _os
import sys as _sys


def _real_orc_spec():
    here = _os.path.dirname(_os.path.abspath(__file__))
    parent = _os.path.realpath(_os.path.dirname(here))
    paths = [p for p in _sys.path if _os.path.realpath(p or _os.curdir) != parent]
    spec = _machinery.PathFinder.find_spec("orc", paths)
    if spec is not None and spec.loader is not None:  # a regular package elsewhere on the path
        return spec
    for finder in _sys.meta_path:  # pip's editable finder, and others after the path search
        if finder is _machinery.PathFinder or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec("orc", None)
        except Exception:  # noqa: BLE001 - a foreign finder's trouble is not ours to report
            continue
        if spec is not None and spec.loader is not None and spec.origin != __file__:
            return spec
    pkg = _os.path.join(here, "orc")
    return _util.spec_from_file_location("orc", _os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg])


def _replace_self():
    spec = _real_orc_spec()
    module = _util.module_from_spec(spec)
    _sys.modules["orc"] = module  # the import statement returns what sys.modules holds at the end
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        raise ImportError(f"{e}\n(orc was imported from {spec.origin}: the current directory holds orc's checkout "
                          f"folder {_os.path.dirname(_os.path.abspath(__file__))}; build it there, or change to "
                          "another directory)") from e


_replace_self()
