"""Shared fixtures: the local API on the sample collection, and a factory of servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from coreviz_frames.local_api import LocalAPI


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
