"""coreviz_frames: CoreViz collections into typed DataFrames, Parquet datasets and crops.

Example:
    >>> import coreviz_frames as cvf
    >>> client = cvf.Client()                       # COREVIZ_API_KEY from the environment
    >>> tables = cvf.to_tables(client.browse("COLLECTION_ID"))
    >>> tables.objects.label.value_counts()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    APIStatusError,
    AuthenticationError,
    ConfigError,
    CorevizError,
    CorevizWarning,
    EmptySplitWarning,
    ExportError,
    ImageLoadError,
    InvalidIdError,
    InvalidResponseError,
    MediaIdMismatchError,
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

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from .boxes import (
        boxes_to_normalized_xywh as boxes_to_normalized_xywh,
        boxes_to_xyxy as boxes_to_xyxy,
        boxes_to_yolo as boxes_to_yolo,
    )
    from .client import Client as Client, FetchReport as FetchReport
    from .coco import export_coco as export_coco
    from .crops import CropResult as CropResult, load_crops as load_crops, show_crops as show_crops
    from .detection import (
        DetectionDataset as DetectionDataset,
        detection_collate as detection_collate,
    )
    from .engines import duckdb_views as duckdb_views
    from .export import ExportReport as ExportReport, export_parquet as export_parquet
    from .filters import BrowseFilters as BrowseFilters
    from .flatten import FlattenReport as FlattenReport
    from .frameset import DatasetReport as DatasetReport
    from .hf import export_hf as export_hf, to_hf_dataset as to_hf_dataset
    from .images import (
        ImageResult as ImageResult,
        load_image as load_image,
        load_images as load_images,
    )
    from .options import CropOptions as CropOptions, DownloadOptions as DownloadOptions
    from .parquet import read_parquet as read_parquet
    from .search import SearchResults as SearchResults
    from .selection import DatasetOptions as DatasetOptions
    from .syncing import SyncReport as SyncReport, sync as sync
    from .tables import MediaTables as MediaTables, tags_wide as tags_wide, to_tables as to_tables
    from .training import (
        CropDataset as CropDataset,
        export_crops as export_crops,
        split_by_media as split_by_media,
    )
    from .yolo import export_yolo as export_yolo

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
    "DatasetOptions": "selection",
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
    "sync": "syncing",
    "SyncReport": "syncing",
}

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "ConfigError",
    "CorevizError",
    "CorevizWarning",
    "EmptySplitWarning",
    "ExportError",
    "ImageLoadError",
    "InvalidIdError",
    "InvalidResponseError",
    "MediaIdMismatchError",
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
