"""One way to import an optional extra: import_optional and MissingDependencyError."""

from __future__ import annotations

import subprocess
import sys

import pytest

import coreviz_frames as cvf
from coreviz_frames._util.optional import import_optional
from coreviz_frames.errors import ConfigError, MissingDependencyError


def test_present_module_is_returned():
    assert import_optional("json", extra="none", purpose="test") is sys.modules["json"]


def test_missing_module_names_purpose_package_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(MissingDependencyError) as caught:
        import_optional("polars", extra="polars", purpose="Polars output")
    err = caught.value
    assert str(err).startswith('Polars output needs polars: pip install "coreviz-frames[polars]"')
    assert err.name == "polars"
    # old ``except`` clauses keep working: it is a ConfigError, an ImportError and public
    assert isinstance(err, ConfigError) and isinstance(err, ImportError)
    assert cvf.MissingDependencyError is MissingDependencyError


def test_submodule_names_the_top_level_package(monkeypatch):
    # a name no test imports (torchvision.tv_tensors, once imported by another test in the
    # same worker, stays in sys.modules even when its parent is hidden)
    monkeypatch.setitem(sys.modules, "no_such_parent_xyz", None)
    with pytest.raises(MissingDependencyError, match=r"needs no_such_parent_xyz: ") as caught:
        import_optional("no_such_parent_xyz.tv_tensors", extra="torch", purpose="boxes")
    assert caught.value.name == "no_such_parent_xyz"


def test_not_required_gives_none_when_absent_or_broken(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert import_optional("torch", extra="torch", purpose="x", required=False) is None

    def broken(name, *args, **kwargs):
        raise OSError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr("importlib.import_module", broken)
    assert import_optional("torch", extra="torch", purpose="x", required=False) is None
    with pytest.raises(OSError, match="libtorch"):  # a broken install is not "not installed"
        import_optional("torch", extra="torch", purpose="x")


def test_callers_raise_it(monkeypatch):
    from coreviz_frames.tables.convert import polars

    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(MissingDependencyError, match=r"coreviz-frames\[polars\]"):
        polars()


def test_dask_module_without_dask_gives_the_hint():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "try:\n    import coreviz_frames.dask\n"
        "except ImportError as e:\n    print(type(e).__name__, e.name, '|', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingDependencyError dask |")
    assert 'pip install "coreviz-frames[dask]"' in out.stdout
