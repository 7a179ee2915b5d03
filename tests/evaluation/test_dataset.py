"""dataset.py: digest stability, deterministic sample cap, cheap header checks, loading."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regpilot.evaluation.dataset import (
    DatasetError,
    check_header,
    dataset_digest,
    dataset_format,
    is_remote,
    load_dataset,
    local_path,
    sample_rows,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "x": rng.normal(size=500),
            "n": rng.integers(0, 10, size=500),
            "s": [f"id-{i % 37}" for i in range(500)],
            "label": rng.integers(0, 2, size=500),
        }
    )


def _in_another_process(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_digest_is_stable_across_processes(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, index=False)
    code = (
        "import json, pandas as pd\n"
        "from regpilot.evaluation.dataset import dataset_digest, sample_rows\n"
        f"f = pd.read_parquet({str(path)!r})\n"
        "print(json.dumps([dataset_digest(f), dataset_digest(sample_rows(f, 100))]))"
    )
    other = json.loads(_in_another_process(code))
    here = [dataset_digest(frame), dataset_digest(sample_rows(frame, 100))]
    assert other == here
    assert all(len(d) == 16 and int(d, 16) >= 0 for d in here)


def test_digest_sees_values_names_dtypes_and_rows(frame: pd.DataFrame) -> None:
    base = dataset_digest(frame)
    assert dataset_digest(frame.copy()) == base
    assert dataset_digest(frame.reset_index(drop=True).set_axis(range(100, 600))) == base  # index
    changed = frame.copy()
    changed.loc[7, "x"] += 1e-9
    assert dataset_digest(changed) != base
    assert dataset_digest(frame.rename(columns={"x": "y"})) != base
    assert dataset_digest(frame.astype({"n": "float64"})) != base
    assert dataset_digest(frame.iloc[:-1]) != base
    assert dataset_digest(frame.iloc[::-1]) != base  # the digest is of the rows in use, in order


def test_sample_cap_is_deterministic_and_order_independent(frame: pd.DataFrame) -> None:
    first = sample_rows(frame, 120)
    assert len(first) == 120
    pd.testing.assert_frame_equal(first, sample_rows(frame, 120))
    shuffled = frame.sample(frac=1.0, random_state=11)
    # Same rows chosen whatever the file order (compared as sets of rows).
    key = list(frame.columns)
    chosen = first.sort_values(key).reset_index(drop=True)
    chosen_from_shuffled = sample_rows(shuffled, 120).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(chosen, chosen_from_shuffled)
    # Kept in file order, index reset, and a subset of the original rows.
    positions = frame.reset_index().merge(first, on=key)["index"].tolist()
    assert positions == sorted(positions) and len(positions) == 120
    assert list(first.index) == list(range(120))


def test_sample_cap_keeps_small_frames_whole_and_nests(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(sample_rows(frame, 500), frame)
    pd.testing.assert_frame_equal(sample_rows(frame, 10_000), frame)
    key = list(frame.columns)
    small = sample_rows(frame, 50).merge(
        sample_rows(frame, 200), on=key, how="left", indicator=True
    )
    assert (small["_merge"] == "both").all()  # a smaller cap is a subset of a larger one
    with pytest.raises(ValueError):
        sample_rows(frame, 0)


def test_header_check_passes_for_csv_parquet_and_file_uri(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    csv_path = tmp_path / "d.csv"
    frame.to_csv(csv_path, index=False)
    parquet_path = tmp_path / "d.parquet"
    frame.to_parquet(parquet_path, index=False)
    assert check_header(str(csv_path), "label") == "ok"
    assert check_header(str(parquet_path), "label") == "ok"
    assert check_header(csv_path.as_uri(), "label") == "ok"
    gz = tmp_path / "d.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("a,label\n1,0\n")
    assert check_header(str(gz), "label") == "ok"
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufefflabel,b\n1,2\n".encode())
    assert check_header(str(bom), "label") == "ok"
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.to_parquet(folder / "part-0.parquet", index=False)
    assert check_header(str(folder), "label") == "ok"


def test_header_check_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,2\nthis line is not, valid, csv, for, the, header\n\x00\x00")
    assert check_header(str(path), "label") == "ok"


def test_header_check_errors_are_clear(frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        check_header(str(tmp_path / "missing.csv"), "label")
    csv_path = tmp_path / "d.csv"
    frame.to_csv(csv_path, index=False)
    with pytest.raises(
        DatasetError, match=r"no targets column 'target' \(columns: x, n, s, label\)"
    ):
        check_header(str(csv_path), "target")
    parquet_path = tmp_path / "d.parquet"
    frame.to_parquet(parquet_path, index=False)
    with pytest.raises(DatasetError, match="no targets column 'y'"):
        check_header(str(parquet_path), "y")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match="empty"):
        check_header(str(empty), "label")
    other = tmp_path / "d.json"
    other.write_text("{}")
    with pytest.raises(DatasetError, match="unknown format"):
        check_header(str(other), "label")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="cannot read the Parquet schema"):
        check_header(str(broken), "label")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetError, match="no Parquet files"):
        check_header(str(tmp_path / "nothing"), "label")


def test_remote_uris_are_not_checked_cheaply() -> None:
    for uri in ("runs:/abc/data.csv", "s3://bucket/d.parquet", "mlflow-artifacts:/x/y.csv"):
        assert is_remote(uri)
        assert check_header(uri, "label") == "unchecked"
    assert not is_remote("/tmp/x.csv") and not is_remote("file:///tmp/x.csv")
    assert not is_remote("C:/data/x.csv")  # a drive letter is not a scheme
    assert local_path("file:///tmp/a%20b.csv") == Path("/tmp/a b.csv")


def test_format_by_suffix(tmp_path: Path) -> None:
    assert dataset_format("x.CSV") == "csv"
    assert dataset_format("x.csv.gz") == "csv"
    assert dataset_format("x.pq") == "parquet"
    assert dataset_format(tmp_path) == "parquet"
    with pytest.raises(DatasetError):
        dataset_format("x.xlsx")


def test_load_dataset_caps_digests_and_validates(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    loaded = load_dataset(str(path), "label", 100, tmp_path / "dl")
    assert (loaded.rows_total, loaded.rows_used) == (500, 100)
    assert loaded.digest == dataset_digest(sample_rows(pd.read_csv(path), 100))
    with pytest.raises(DatasetError, match="no targets column 'y'"):
        load_dataset(str(path), "y", 100, tmp_path / "dl")
    with_gaps = frame.astype({"label": "float64"})
    with_gaps.loc[[3, 9], "label"] = np.nan
    with_gaps.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(DatasetError, match="2 rows have no 'label' value"):
        load_dataset(str(tmp_path / "gaps.csv"), "label", 100, tmp_path / "dl")
    (tmp_path / "header_only.csv").write_text("a,label\n")
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(str(tmp_path / "header_only.csv"), "label", 100, tmp_path / "dl")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "gone.csv"), "label", 100, tmp_path / "dl")
