"""tables/arrow.py: a grain's table in its declared Arrow schema, below the exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pytest

from coreviz_frames.errors import SchemaError
from coreviz_frames.schema import SCHEMAS, empty_frame
from coreviz_frames.tables.arrow import METADATA_KEY, as_grain_table, file_metadata, to_arrow


def test_to_arrow_gives_the_declared_schema_and_metadata():
    frame = empty_frame("objects")
    table = to_arrow(frame, "objects")
    assert table.schema.remove_metadata().equals(SCHEMAS["objects"])
    blob = json.loads(table.schema.metadata[METADATA_KEY.encode()])
    assert blob["grain"] == "objects"
    assert file_metadata("objects") == {
        METADATA_KEY.encode(): table.schema.metadata[b"coreviz_frames"]
    }


def test_to_arrow_names_the_missing_column():
    frame = empty_frame("tags").drop(columns=["media_id"])
    with pytest.raises(SchemaError, match="has no column 'media_id'") as caught:
        to_arrow(frame, "tags")
    assert caught.value.field == "media_id"


def test_to_arrow_names_the_column_that_does_not_fit():
    frame = empty_frame("media").astype({"width": object})
    frame.loc[0, "media_id"] = "m1"
    frame.loc[0, "width"] = "wide"
    with pytest.raises(SchemaError, match="column 'width' of the media table") as caught:
        to_arrow(frame, "media")
    assert caught.value.field == "width"


def test_as_grain_table_takes_arrow_without_a_pandas_round_trip():
    table = to_arrow(empty_frame("tags"), "tags").replace_schema_metadata(None)
    assert as_grain_table(table, "tags").schema.metadata == file_metadata("tags")
    assert as_grain_table(pd.DataFrame(empty_frame("tags")), "tags").num_rows == 0
    with pytest.raises(SchemaError, match="differs from the declared one"):
        as_grain_table(pa.table({"media_id": ["m1"]}), "tags")


def test_tables_import_nothing_from_the_layers_above():
    code = (
        "import sys\n"
        "import coreviz_frames.tables.media_tables, coreviz_frames.tables.preview\n"
        "import coreviz_frames.tables.arrow\n"
        "up = ('exports', 'images', 'api', 'training', 'http', 'cli', 'dask')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2][-1] in up\n"
        "             and m.startswith('coreviz_frames.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
