"""The one reader of --ids files."""

from __future__ import annotations

import io
import sys

import pytest

from coreviz_frames._util.idsfile import read_ids, read_ids_file
from coreviz_frames.errors import ConfigError


def test_comments_blank_lines_and_whitespace_are_skipped(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# exported on monday\nabc\n\n  def \n#ghi\njkl\n", encoding="utf-8")
    assert read_ids_file(path) == ["abc", "def", "jkl"]
    assert read_ids_file(str(path)) == ["abc", "def", "jkl"]


def test_dash_reads_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("a1\nb2\n"))
    assert read_ids_file("-") == ["a1", "b2"]
    assert read_ids(["x\n", "# y\n"]) == ["x"]


@pytest.mark.parametrize("kind", ["missing", "directory", "not utf-8"])
def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path, kind):
    path = tmp_path / "ids.txt"
    if kind == "directory":
        path.mkdir()
    elif kind == "not utf-8":
        path.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ConfigError, match=r"ids\.txt"):
        read_ids_file(path)
