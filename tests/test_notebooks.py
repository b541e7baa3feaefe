"""The notebooks run top to bottom on a real Jupyter kernel, and are committed without outputs.

Each notebook executes with nbclient on an ipykernel started from *this* Python (a
kernelspec written to a temporary directory, so a ``python3`` kernelspec elsewhere on the
machine cannot swap the interpreter). The kernel runs with ``MPLBACKEND=Agg`` and without
``COREVIZ_API_KEY``, so the notebooks always use the local sample API. A cell that raises
fails the test, with the cell's traceback in the message.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = ["01_explore_collection.ipynb", "02_train_on_crops.ipynb"]
NEEDS_TORCH = {"02_train_on_crops.ipynb"}
KERNEL_NAME = "python3"
CHECK_EXECUTABLE = "import sys; print(sys.executable)"


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec directory whose ``python3`` kernel is this interpreter."""
    missing = _missing("nbclient", "nbformat", "ipykernel", "jupyter_client")
    if missing:
        pytest.skip(f"notebook extra not installed (missing {', '.join(missing)})")
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(
    name: str, kernel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name in NEEDS_TORCH and _missing("torch"):
        pytest.skip(f"{name} needs torch (pip install torch)")
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    # The kernel inherits this environment: local sample API, no GUI backend, no user cache.
    for var in ("COREVIZ_API_KEY", "COREVIZ_BASE_URL", "COREVIZ_FRAMES_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_EXECUTABLE))
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    client = NotebookClient(
        nb,
        km=km,
        kernel_name=KERNEL_NAME,
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.monotonic()
    try:
        client.execute()  # raises CellExecutionError (with the traceback) on a failing cell
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        if km.has_kernel:  # nbclient leaves a kernel manager it was given running
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
        km.context.destroy(linger=0)  # closes every socket left (ResourceWarning otherwise)
    elapsed = time.monotonic() - started
    print(f"{name}: {elapsed:.1f} s")

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert Path(printed.strip()) == Path(sys.executable), "the kernel ran another Python"
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    if name == "01_explore_collection.ipynb":
        previews = [p for p in _html_outputs(nb) if "<summary>objects" in p]
        assert len(previews) >= 2  # the tables after browse, and again once crops are cached
        assert "<img" not in previews[0] and '<img src="data:image/jpeg' in previews[-1]


def _html_outputs(nb) -> list[str]:
    """The ``text/html`` of every code cell's outputs, in order."""
    return [
        o.get("data", {}).get("text/html", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "text/html" in o.get("data", {})
    ]


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_committed_without_outputs(name: str) -> None:
    nb = json.loads((NOTEBOOK_DIR / name).read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert "widgets" not in nb.get("metadata", {}), "widget state saved in the notebook"
    assert nb["metadata"].get("kernelspec", {}).get("name") == KERNEL_NAME
    for i, cell in enumerate(nb["cells"]):
        where = f"{name} cell {i}"
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{where} has outputs"
            assert cell.get("execution_count") is None, f"{where} has an execution count"
        assert "execution" not in cell.get("metadata", {}), f"{where} has execution timings"
        assert "widgets" not in cell.get("metadata", {}), f"{where} has widget state"
