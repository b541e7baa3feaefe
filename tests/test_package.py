"""The public surface: __all__ is pinned, every name resolves, heavy imports stay lazy."""

from __future__ import annotations

import subprocess
import sys

import coreviz_frames as cvf

#: The public API, name by name and in order (as httpx pins its own): the error tree, the
#: version, then the lazily imported names, sorted. A new public name is added here on purpose.
EXPECTED = [
    "APIStatusError",
    "AuthenticationError",
    "ConfigError",
    "CorevizError",
    "CorevizWarning",
    "EmptySplitWarning",
    "ExportError",
    "FingerprintError",
    "ImageLoadError",
    "InvalidIdError",
    "InvalidResponseError",
    "MediaIdMismatchError",
    "MissingDependencyError",
    "NetworkError",
    "NotFoundError",
    "PaginationWarning",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "SchemaError",
    "ServerError",
    "SkippedRecordWarning",
    "TransportError",
    "__version__",
    "BrowseFilters",
    "Client",
    "CropDataset",
    "CropOptions",
    "CropResult",
    "DatasetOptions",
    "DatasetReport",
    "DetectionDataset",
    "DownloadOptions",
    "ExportReport",
    "FetchReport",
    "FlattenReport",
    "ImageResult",
    "MediaTables",
    "SearchResults",
    "SyncReport",
    "boxes_to_normalized_xywh",
    "boxes_to_xyxy",
    "boxes_to_yolo",
    "detection_collate",
    "duckdb_views",
    "export_coco",
    "export_crops",
    "export_hf",
    "export_parquet",
    "export_yolo",
    "load_crops",
    "load_image",
    "load_images",
    "read_parquet",
    "set_options",
    "show_crops",
    "split_by_media",
    "sync",
    "tags_wide",
    "to_hf_dataset",
    "to_tables",
]


def test_all_is_pinned():
    assert cvf.__all__ == EXPECTED


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
