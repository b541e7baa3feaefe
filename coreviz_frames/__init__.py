"""coreviz_frames: CoreViz collections into typed DataFrames, Parquet datasets and crops.

Example:
    >>> import coreviz_frames as cvf
    >>> client = cvf.Client()                       # COREVIZ_API_KEY from the environment
    >>> tables = cvf.to_tables(client.browse("COLLECTION_ID"))
    >>> tables.objects.label.value_counts()
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .errors import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    CorevizError,
    CorevizWarning,
    ExportError,
    ImageLoadError,
    InvalidIdError,
    InvalidResponseError,
    NetworkError,
    NotFoundError,
    PaginationWarning,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    SchemaError,
    ServerError,
    SkippedRecordWarning,
    TransportError,
)

# Public names that live in heavier modules, imported on first use.
_LAZY = {
    "Client": "client",
    "FetchReport": "client",
    "SearchResults": "search",
    "BrowseFilters": "filters",
    "MediaTables": "tables",
    "to_tables": "tables",
    "FlattenReport": "flatten",
    "tags_wide": "tables",
    "boxes_to_xyxy": "boxes",
    "boxes_to_normalized_xywh": "boxes",
    "boxes_to_yolo": "boxes",
    "read_parquet": "parquet",
    "export_parquet": "export",
    "ExportReport": "export",
    "load_image": "images",
    "load_images": "images",
    "ImageResult": "images",
    "DownloadOptions": "options",
    "CropOptions": "options",
    "CropResult": "crops",
    "load_crops": "crops",
    "show_crops": "crops",
    "CropDataset": "training",
    "split_by_media": "training",
    "export_crops": "training",
    "export_coco": "coco",
    "export_yolo": "yolo",
    "DatasetReport": "frameset",
    "DetectionDataset": "detection",
    "detection_collate": "detection",
    "to_hf_dataset": "hf",
    "export_hf": "hf",
    "duckdb_views": "engines",
    "duckdb_views": "engines",
}

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "ConfigError",
    "CorevizError",
    "CorevizWarning",
    "ExportError",
    "ImageLoadError",
    "InvalidIdError",
    "InvalidResponseError",
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
    *sorted(_LAZY),
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'coreviz_frames' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
