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
    FingerprintError,
    ImageLoadError,
    InvalidIdError,
    InvalidResponseError,
    MediaIdMismatchError,
    MissingDependencyError,
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
    from ._util.progress import set_options as set_options
    from .api.client import Client as Client, FetchReport as FetchReport
    from .api.filters import BrowseFilters as BrowseFilters
    from .api.search import SearchResults as SearchResults
    from .exports.engines import duckdb_views as duckdb_views
    from .exports.reader import read_parquet as read_parquet
    from .exports.syncing import SyncReport as SyncReport, sync as sync
    from .exports.writer import (
        ExportReport as ExportReport,
        export_parquet as export_parquet,
    )
    from .images.crop_plan import CropResult as CropResult
    from .images.crops import load_crops as load_crops, show_crops as show_crops
    from .images.loading import (
        ImageResult as ImageResult,
        load_image as load_image,
        load_images as load_images,
    )
    from .images.options import (
        CropOptions as CropOptions,
        DownloadOptions as DownloadOptions,
    )
    from .tables.boxes import (
        boxes_to_normalized_xywh as boxes_to_normalized_xywh,
        boxes_to_xyxy as boxes_to_xyxy,
        boxes_to_yolo as boxes_to_yolo,
    )
    from .tables.flatten import FlattenReport as FlattenReport
    from .tables.media_tables import (
        MediaTables as MediaTables,
        tags_wide as tags_wide,
        to_tables as to_tables,
    )
    from .training.coco import export_coco as export_coco
    from .training.crop_dataset import (
        CropDataset as CropDataset,
        export_crops as export_crops,
    )
    from .training.detection import (
        DetectionDataset as DetectionDataset,
        detection_collate as detection_collate,
    )
    from .training.frames import DatasetReport as DatasetReport
    from .training.huggingface import (
        export_hf as export_hf,
        to_hf_dataset as to_hf_dataset,
    )
    from .training.selection import DatasetOptions as DatasetOptions
    from .training.splits import split_by_media as split_by_media
    from .training.yolo import export_yolo as export_yolo

# Public names that live in heavier modules, imported on first use.
_LAZY = {
    "Client": "api.client",
    "FetchReport": "api.client",
    "SearchResults": "api.search",
    "BrowseFilters": "api.filters",
    "MediaTables": "tables.media_tables",
    "to_tables": "tables.media_tables",
    "FlattenReport": "tables.flatten",
    "tags_wide": "tables.media_tables",
    "boxes_to_xyxy": "tables.boxes",
    "boxes_to_normalized_xywh": "tables.boxes",
    "boxes_to_yolo": "tables.boxes",
    "read_parquet": "exports.reader",
    "export_parquet": "exports.writer",
    "ExportReport": "exports.writer",
    "load_image": "images.loading",
    "load_images": "images.loading",
    "ImageResult": "images.loading",
    "DownloadOptions": "images.options",
    "CropOptions": "images.options",
    "DatasetOptions": "training.selection",
    "CropResult": "images.crop_plan",
    "load_crops": "images.crops",
    "show_crops": "images.crops",
    "CropDataset": "training.crop_dataset",
    "split_by_media": "training.splits",
    "export_crops": "training.crop_dataset",
    "export_coco": "training.coco",
    "export_yolo": "training.yolo",
    "DatasetReport": "training.frames",
    "DetectionDataset": "training.detection",
    "detection_collate": "training.detection",
    "to_hf_dataset": "training.huggingface",
    "export_hf": "training.huggingface",
    "duckdb_views": "exports.engines",
    "sync": "exports.syncing",
    "SyncReport": "exports.syncing",
    "set_options": "_util.progress",
}

__all__ = [
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
