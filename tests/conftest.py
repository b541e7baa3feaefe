"""Shared fixtures: the local API on the sample collection, and a factory of servers.

Hypothesis runs derandomised (the ``ci`` profile: the same examples on every run and every
machine, no per-example deadline on a loaded machine), so a green ``make test`` stays green
on a fresh clone. A long random search is
started by hand: ``HYPOTHESIS_PROFILE=explore python -m pytest tests/exports/test_fingerprint.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from coreviz_frames.local_api import LocalAPI

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=5_000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
