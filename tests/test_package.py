"""The public surface: __all__ is pinned, every name resolves, heavy imports stay lazy."""

from __future__ import annotations

import subprocess
import sys

import coreviz_frames as cvf

EXPECTED = {
    "APIStatusError",
    "AuthenticationError",
    "ConfigError",
    "CorevizError",
    "CorevizWarning",
    "EmptySplitWarning",
    "PaginationWarning",
    "SkippedRecordWarning",
    "ExportError",
    "ImageLoadError",
    "InvalidIdError",
    "InvalidResponseError",
    "MediaIdMismatchError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "PaymentRequiredError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "SchemaError",
    "ServerError",
    "TransportError",
    "__version__",
    "Client",
    "FetchReport",
    "SearchResults",
    "BrowseFilters",
    "MediaTables",
    "to_tables",
    "FlattenReport",
    "tags_wide",
    "boxes_to_xyxy",
    "boxes_to_normalized_xywh",
    "boxes_to_yolo",
    "read_parquet",
    "export_parquet",
    "ExportReport",
    "load_image",
    "load_images",
    "ImageResult",
    "DownloadOptions",
    "CropOptions",
    "DatasetOptions",
    "load_crops",
    "show_crops",
    "CropResult",
    "CropDataset",
    "split_by_media",
    "export_crops",
    "export_coco",
    "export_yolo",
    "DatasetReport",
    "DetectionDataset",
    "detection_collate",
    "to_hf_dataset",
    "export_hf",
    "duckdb_views",
    "set_options",
    "sync",
    "SyncReport",
}


def test_all_is_pinned():
    assert set(cvf.__all__) == EXPECTED
    assert len(cvf.__all__) == len(set(cvf.__all__))


def test_every_public_name_resolves():
    for name in cvf.__all__:
        assert getattr(cvf, name) is not None, name


def test_every_error_derives_from_coreviz_error():
    for name in cvf.__all__:
        value = getattr(cvf, name)
        if isinstance(value, type) and issubclass(value, Warning):
            assert issubclass(value, cvf.CorevizWarning), name
        elif isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, cvf.CorevizError), name


def test_import_does_not_pull_heavy_optional_packages():
    code = (
        "import sys, coreviz_frames as cvf; cvf.to_tables; cvf.Client; cvf.load_crops; "
        "cvf.CropDataset; cvf.read_parquet; "
        "heavy = ('torch', 'dask', 'distributed', 'matplotlib'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dataset_writers_import_no_optional_package():
    code = (
        "import sys, coreviz_frames as cvf; cvf.export_coco; cvf.export_yolo; "
        "cvf.DetectionDataset; cvf.to_hf_dataset; cvf.export_hf; "
        "heavy = ('torch', 'datasets', 'pycocotools', 'supervision'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
