"""Evaluation datasets: locate, read, cap and fingerprint them.

A dataset is a local path (or `file://` URI) or any URI MLflow can download (`runs:/`,
`models:/`, `mlflow-artifacts:/`, `s3://`, ...), read as CSV (`.csv`, optionally compressed:
`.csv.gz`, `.csv.bz2`, `.csv.xz`, `.csv.zip`) or Parquet (`.parquet`, `.pq`, `.parq`, or a
directory of Parquet files), chosen by suffix.

Sample cap: when a dataset has more than `max_rows` rows, the rows kept are the `max_rows` rows
with the smallest stable row hash (`pandas.util.hash_pandas_object`, fixed key, index ignored),
kept in file order. No random seed is involved: the same rows are chosen in every process, and
the choice does not depend on the order of rows in the file (only identical rows tie, and ties
keep file order). Appending rows changes the sample only where the new rows hash lower.

`dataset_digest` fingerprints the rows actually used (column names, dtypes, row hashes), so
a result can be cached by (model, digest).

pandas, numpy, pyarrow and mlflow are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import pandas as pd

DatasetFormat = Literal["csv", "parquet"]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


class DatasetError(ValueError):
    """The dataset cannot be used: missing, unreadable, wrong format, or without the targets."""


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset read and capped: the frame used, its digest and row counts."""

    frame: pd.DataFrame
    digest: str
    rows_total: int
    rows_used: int
    path: str


def is_remote(uri: str) -> bool:
    """True for a URI with a scheme other than `file` (a single letter is a Windows drive)."""
    scheme = urlparse(uri).scheme
    return bool(scheme) and scheme != "file" and len(scheme) > 1


def local_path(uri: str) -> Path:
    """The filesystem path of a local path or `file://` URI."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri)


def dataset_format(path: str | os.PathLike[str]) -> DatasetFormat:
    """ "csv" or "parquet" from the suffix (a directory is Parquet); DatasetError otherwise."""
    target = Path(path)
    name = target.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES) or target.is_dir():
        return "parquet"
    raise DatasetError(
        f"dataset {str(path)!r}: unknown format (expected a name ending in "
        f"{', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)})"
    )


def check_header(path: str, targets: str) -> Literal["ok", "unchecked"]:
    """Cheap check that a LOCAL dataset exists and has the `targets` column.

    Reads only the CSV header line or the Parquet schema. A remote URI is not checked
    ("unchecked"): the evaluation itself reads it. Raises DatasetError with a clear message.
    """
    if is_remote(path):
        return "unchecked"
    target = local_path(path)
    if not target.exists():
        raise DatasetError(f"dataset {path!r} does not exist")
    fmt = dataset_format(target)
    columns = _parquet_columns(target) if fmt == "parquet" else _csv_columns(target)
    if targets not in columns:
        shown = ", ".join(columns[:20]) + (" ..." if len(columns) > 20 else "")
        raise DatasetError(
            f"dataset {path!r} has no targets column {targets!r} (columns: {shown or 'none'})"
        )
    return "ok"


def _csv_columns(path: Path) -> list[str]:
    name = path.name.lower()
    try:
        if name.endswith(".csv"):
            with path.open(newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), [])
        elif name.endswith(".csv.gz"):
            with gzip.open(path, "rt", newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), [])
        else:  # other compressions: let pandas decompress, still reading no rows
            import pandas as pd

            header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise DatasetError(f"dataset {str(path)!r}: cannot read the CSV header: {exc}") from exc
    if not header:
        raise DatasetError(f"dataset {str(path)!r} is empty (no header line)")
    return [column.strip() for column in header]


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        if path.is_dir():
            files = sorted(path.rglob("*.parquet")) or sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
            )
            if not files:
                raise DatasetError(f"dataset {str(path)!r} is a directory with no Parquet files")
            path = files[0]
        return list(pq.read_schema(path).names)
    except DatasetError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise DatasetError(f"dataset {str(path)!r}: cannot read the Parquet schema: {exc}") from exc


def resolve(uri: str, download_dir: str | os.PathLike[str]) -> Path:
    """A local path for `uri`, downloading it with MLflow when it is remote.

    Uses the tracking/registry URI already configured for MLflow (`runs:/`, `models:/`).
    Network errors propagate unchanged (the caller decides what is infrastructure).
    """
    if not is_remote(uri):
        target = local_path(uri)
        if not target.exists():
            raise DatasetError(f"dataset {uri!r} does not exist")
        return target
    import mlflow.artifacts

    Path(download_dir).mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(download_dir)))


def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or Parquet file (by suffix) into a DataFrame; DatasetError on failure."""
    import pandas as pd

    fmt = dataset_format(path)
    try:
        if fmt == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:
        raise DatasetError(f"dataset {str(path)!r}: cannot read {fmt}: {exc}") from exc


def _row_hashes(frame: pd.DataFrame) -> object:
    from pandas.util import hash_pandas_object

    return hash_pandas_object(frame, index=False).to_numpy(dtype="uint64")


def sample_rows(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """At most `max_rows` rows: those with the smallest stable row hash, in file order.

    Returns the frame itself (index reset) when it is small enough.
    """
    import numpy as np

    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    hashes = np.asarray(_row_hashes(frame))
    chosen = np.sort(np.argsort(hashes, kind="stable")[:max_rows])
    return frame.iloc[chosen].reset_index(drop=True)


def dataset_digest(frame: pd.DataFrame) -> str:
    """A 16-hex-digit digest of the rows, column names and dtypes; stable across processes."""
    import numpy as np

    digest = hashlib.sha256()
    for column, dtype in zip(frame.columns, frame.dtypes, strict=True):
        digest.update(f"{column}\x1f{dtype}\x1e".encode())
    digest.update(f"rows={len(frame)}\x1e".encode())
    digest.update(np.asarray(_row_hashes(frame)).astype("<u8").tobytes())
    return digest.hexdigest()[:16]


def load_dataset(
    uri: str, targets: str, max_rows: int, download_dir: str | os.PathLike[str]
) -> LoadedDataset:
    """Resolve, read, check the targets column, cap to `max_rows` and fingerprint."""
    path = resolve(uri, download_dir)
    frame = read_frame(path)
    if targets not in frame.columns:
        shown = ", ".join(str(c) for c in list(frame.columns)[:20])
        raise DatasetError(f"dataset {uri!r} has no targets column {targets!r} (columns: {shown})")
    if len(frame) == 0:
        raise DatasetError(f"dataset {uri!r} has no rows")
    if frame[targets].isna().any():
        missing = int(frame[targets].isna().sum())
        raise DatasetError(f"dataset {uri!r}: {missing} rows have no {targets!r} value")
    used = sample_rows(frame, max_rows)
    return LoadedDataset(
        frame=used,
        digest=dataset_digest(used),
        rows_total=len(frame),
        rows_used=len(used),
        path=str(path),
    )
