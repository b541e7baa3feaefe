"""Shared fixtures: the local API on the sample collection, and a factory of servers.

``make test`` runs the suite on every core (pytest-xdist, ``-n auto --maxschedchunk 1``):
each test takes its own folder (``tmp_path``) and port (0). Tests marked ``slow`` run first,
so the workers take the long ones in turn instead of one worker ending the run alone.

Hypothesis runs derandomised (the ``ci`` profile: the same examples on every run and every
machine, no per-example deadline on a loaded machine), so a green ``make test`` stays green
on a fresh clone. A long random search is
started by hand: ``HYPOTHESIS_PROFILE=explore python -m pytest tests/exports/test_fingerprint.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from coreviz_frames.local_api import LocalAPI

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel is built from: copied, so builds running in parallel never share ``build/``.
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "coreviz_frames", "data", "notebooks")

# One xdist worker per core: torch's OpenMP pool would make two threads per worker that
# spin while they wait for each other. Set before any test imports torch; child processes
# (README blocks, notebook kernels, DataLoader workers) inherit it; a value set outside wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=5_000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (a stable sort: same order on every xdist worker)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def sample_api() -> Iterator[LocalAPI]:
    """A session-wide LocalAPI on ``data/``; tests that count requests call ``reset_stats()``."""
    with LocalAPI() as api:
        yield api


@pytest.fixture
def local_api_factory() -> Iterator[Callable[..., LocalAPI]]:
    """``local_api_factory(**LocalAPI kwargs)`` -> a started LocalAPI, stopped after the test."""
    started: list[LocalAPI] = []

    def make(**kwargs) -> LocalAPI:
        api = LocalAPI(**kwargs).start()
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of what the wheel is built from: setuptools builds in the source folder
    (``build/``, ``*.egg-info``), so two builds of the checkout at once would race."""
    dest = tmp_path / "project"
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=junk)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest
