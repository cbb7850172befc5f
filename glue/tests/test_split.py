"""Big uploads over many tasks (split.py): the same files and counts as the upload processed whole, whatever the
byte ranges cut through (quoted line breaks, CRLF, lines longer than a range, duplicates and ids across ranges)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import HEADER, PROCESSING_DATE, stage_run

from csv_ingest import ingest
from csv_ingest.engine import split


def tricky_upload(rows: int = 200) -> bytes:
    rng = random.Random(7)
    lines = []
    for i in range(rows):
        kind = rng.random()
        status = rng.choice(["active", "PENDING", "closed", ""])
        amount = rng.choice(["10", "-2.5", "$1,000.01", "", "abc", "0.000000001"])
        date = rng.choice(["01-04-2025", "2025-04-02", "31-02-2025", ""])
        if kind < 0.05:
            lines.append(f'{i},"multi\nline {i}",m{i}@example.com,{date},{amount},{status}')
        elif kind < 0.08:
            lines.append(f'{i},"stray {i},s@example.com,{date},{amount},{status}')
        elif kind < 0.12 and lines:
            lines.append(lines[-1])  # exact duplicate (maybe in another range)
        elif kind < 0.15:
            lines.append(f"{i % 7},dup id,d@example.com,{date},{amount},{status}")  # ids repeated across ranges
        elif kind < 0.17:
            lines.append(f"{i},short")
        elif kind < 0.19:
            lines.append("")
        elif kind < 0.20:
            lines.append(f"{i},{'x' * 2000},long@example.com,{date},{amount},{status}")  # longer than a range
        elif kind < 0.24:
            lines.append(f" ,No Id,x@example.com,{date[:2]},{amount[:1]},{status[:1]}")  # without id, some equal
        else:
            lines.append(f"{i},Name {i},n{i}@example.com,{date},{amount},{status}")
    return HEADER.replace(b"\n", b"\r\n") + "\r\n".join(lines).encode() + b"\r\n"


def outputs(out, stem):
    def csv_rows(prefix):
        folder = next((out / prefix / stem).glob("v=*"))
        assert (folder / "_SUCCESS").exists()
        rows = []
        for i, part in enumerate(sorted(folder.glob("part-*.csv"))):
            got = list(csv.reader(io.StringIO(part.read_text(encoding="utf-8"), newline="")))
            rows += got if i == 0 else got[1:]  # each part has its header
        return rows

    folder = next((out / "parquet/ingest_date=2026-04-01" / stem).glob("v=*"))
    parquet = [pq.read_table(p).to_pylist() for p in sorted(folder.glob("part-*.parquet"))]
    return csv_rows("processed"), csv_rows("rejected"), [r for part in parquet for r in part]


def rejected_only_upload(rows: int = 200) -> bytes:
    """Every line malformed (too few fields, a stray quote, too many fields): nothing to process, all rejected."""
    bad = [
        f"{i},short" if i % 3 == 0 else f'{i},"stray,s@example.com' if i % 3 == 1 else f"{i},a,b,c,d,e,f,g"
        for i in range(rows)
    ]
    return HEADER + "\n".join(bad).encode() + b"\n"


@pytest.mark.parametrize(("range_bytes", "upload"), [(1500, tricky_upload), (600, rejected_only_upload)])
def test_a_split_upload_gives_the_same_files_and_counts_as_the_whole_upload(
    spark, tmp_path, monkeypatch, range_bytes, upload
):
    data = upload()
    whole_run = stage_run(tmp_path / "whole", {"t.csv": data})
    (whole,) = ingest.run_ingest(
        spark, whole_run["manifest"], whole_run["data_root"], whole_run["output_root"], PROCESSING_DATE
    )
    monkeypatch.setattr(split, "RANGE_BYTES", range_bytes)
    split_run = stage_run(tmp_path / "split", {"t.csv": data})
    (parted,) = ingest.run_ingest(
        spark, split_run["manifest"], split_run["data_root"], split_run["output_root"], PROCESSING_DATE, split_bytes=0
    )
    assert whole.status == parted.status == "processed", (whole.error, parted.error)
    assert (parted.rows_read, parted.rows_processed, parted.rows_rejected, parted.duplicates_removed) == (
        whole.rows_read, whole.rows_processed, whole.rows_rejected, whole.duplicates_removed,
    )  # fmt: skip
    assert parted.quality_issues == whole.quality_issues
    assert outputs(split_run["out"], "t") == outputs(whole_run["out"], "t")
    parts = list(next((split_run["out"] / "rejected" / "t").glob("v=*")).glob("part-*.csv"))
    assert len(parts) > 1  # the rejected rows were written by several tasks


def test_a_big_upload_that_fails_midway_leaves_nothing_in_its_folders(spark, tmp_path, monkeypatch):
    """Its tasks write rejected parts as they go; the catalog's tables read every part file, so a failed upload's
    parts must not stay (a later phase fails here, after phase 2 wrote the rejected rows)."""
    monkeypatch.setattr(split, "RANGE_BYTES", 1500)

    def failing_shuffle(*_args, **_kwargs):
        raise RuntimeError("executor lost in the duplicate phase")

    monkeypatch.setattr(split, "_shuffle", failing_shuffle)
    run = stage_run(tmp_path, {"t.csv": tricky_upload()})
    (result,) = ingest.run_ingest(
        spark, run["manifest"], run["data_root"], run["output_root"], PROCESSING_DATE, split_bytes=0
    )
    assert result.status == "failed"
    assert result.error == "input/t.csv: processing failed: RuntimeError: executor lost in the duplicate phase"
    left = [p.relative_to(run["out"]).as_posix() for p in run["out"].rglob("*") if p.is_file()]
    assert [p for p in left if not p.startswith("stats/")] == []


@pytest.mark.parametrize(
    ("amount", "rows", "cut"),
    [
        ("-2.5", 7, 3),
        ("0.000000001", 9, 4),
        ("999999999999999.999999999", 5000, 2600),
        ("-999999999999999.5", 5000, 1),
        # totals whose whole units pass int64 (~1.3e19): a big upload of maximal amounts in one status
        ("999999999999999.999999999", 40000, 30000),
        ("-999999999999999.999999999", 40000, 7),
    ],
)
def test_two_phase_running_totals_equal_the_running_totals_of_the_rows_in_one_piece(amount, rows, cut):
    # Rows in running-total order (by status first) cut in two buckets: pass 1's sums become the second bucket's
    # offsets. Big amounts make totals beyond int64 (the Python-integer path), and many of them whole units beyond it.
    import numpy as np
    import pyarrow as pa

    from csv_ingest.engine import rules

    amounts = [amount, "1", "", "-0.5"] * rows
    status = pa.array(sorted(["b", "a", None] * (len(amounts) // 3), key=lambda s: (s is None, s)), pa.string())
    parsed = rules.parse_amounts(pa.array(amounts[: len(status)], pa.string()))
    n = len(status)
    table = pa.table(
        {
            "line_number": pa.array(np.arange(n), pa.int64()),
            **{c: pa.nulls(n, pa.string()) for c in ("id", "name", "email")},
            "email_valid": pa.array(np.ones(n, bool)),
            "date": pa.nulls(n, pa.date32()),
            "units": pa.array(parsed.units),
            "nanos": pa.array(parsed.nanos),
            "amount_valid": pa.array(parsed.valid),
            "status": status,
            "mask": pa.array(np.zeros(n, np.int64)),
        }
    )
    buckets = [(0, table.slice(0, cut)), (1, table.slice(cut))]
    offsets = split._offsets([s for b in buckets for s in split._status_sums(b)])
    got = [v for b in buckets for v in split._with_totals(b, offsets).column("running_total_by_status").to_pylist()]
    whole = rules.decimal_text(*rules.running_totals(status, np.arange(n), parsed))
    assert got == whole.to_pylist()


def test_rows_sharing_a_bucket_are_duplicates_only_when_their_whole_row_keys_are_equal():
    # Phase 3b's bucket: rows whose id repeats (or is missing), with their row keys (which hold the id, as
    # rules.row_key does). A hash only chose the bucket:
    # rows are dropped on equal keys, never on an equal hash (keys differing by one character are both kept).
    import pyarrow as pa

    rows = pa.table(
        {
            "line_number": pa.array([2, 3, 5, 4, 9, 6, 7, 8], pa.int64()),
            "id": pa.array(["1", "1", "1", "2", "2", None, None, None], pa.string()),
            "key": pa.array(["1:A", "1:B", "1:A", "2:A", "2:A ", "N:x", "N:x", "N:x "], pa.string()),
            "bucket": pa.array([0, 1, 0, 1, 0, 0, 1, 1], pa.int64()),
        }
    )
    got = {}
    for bucket, (tag, block) in split._duplicate_flags((0, [split._ipc(rows)]), 2):
        assert tag == 1
        t = split._table([block])
        lines, flags = t.column("line_number").to_pylist(), t.column("flag").to_pylist()
        got |= {line: (bucket, flag) for line, flag in zip(lines, flags, strict=True)}
    dropped, dup = split.DROPPED, split.DUPLICATE_ID
    # id 1: lines 2 and 3 kept (different keys) and both flagged, line 5 a copy of line 2; id 2: two different rows;
    # no id: line 7 a copy of line 6, line 8 differs by a space.
    assert got == {2: (0, dup), 3: (1, dup), 5: (0, dropped), 4: (1, dup), 9: (0, dup), 7: (1, dropped)}


def test_equal_ids_share_a_bucket_and_whole_number_ids_spread_over_the_buckets():
    # Phases 3a and 3b send rows by id: rows with equal ids must meet in one bucket, in every task. Whole-number ids
    # go by their number (mixed: ids that are all multiples of the bucket count still spread), the others by _hash.
    import numpy as np
    import pyarrow as pa

    from csv_ingest.engine import rules

    ids = [str(i * 8) for i in range(400)] + ["A-7", "b", "A-7", "0032", "x y", "b", "32", None]
    c = rules.clean({name: pa.array(["" for _ in ids]) for name in rules.REQUIRED_COLUMNS} | {"id": pa.array(ids)})
    which = split._id_bucket(c.id, 8, c.id_number)
    assert which.min() >= 0
    assert which.max() < 8
    # "A-7" twice, "b" twice; "0032" and "32": one id_number (32), so one bucket (a shared bucket is fine)
    for a, b in ((400, 402), (401, 405), (403, 406)):
        assert which[a] == which[b]
    counts = np.bincount(which[:400], minlength=8)
    assert counts.min() >= 25  # 400 multiples of 8 over 8 buckets: none empty, none holding most
    # the same ids in another task (another order, other rows around them) get the same buckets
    again = split._id_bucket(pa.array(ids[::-1]), 8, pa.array(c.id_number.to_pylist()[::-1]))
    assert list(again[::-1]) == list(which)


def test_workers_re_read_a_zip_archive_only_when_it_changed(tmp_path, monkeypatch):
    import importlib
    import sys
    import zipfile
    import zipimport

    from csv_ingest.io import zip_imports

    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", zip_imports._ORIGINAL)
    reads = []
    original_read = zipimport._read_directory
    monkeypatch.setattr(zipimport, "_read_directory", lambda path: reads.append(path) or original_read(path))
    archive = tmp_path / "mods.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipmod_one.py", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, "zipmod_one", raising=False)
    monkeypatch.delitem(sys.modules, "zipmod_two", raising=False)
    assert importlib.import_module("zipmod_one").VALUE == 1
    zip_imports.install()
    zip_imports.install()  # idempotent
    importer = sys.path_importer_cache[str(archive)]
    importer.invalidate_caches()  # the first time: read (what it saw before is not known)
    reads.clear()
    importlib.invalidate_caches()
    importlib.invalidate_caches()
    assert str(archive) not in reads  # unchanged: not read again
    with zipfile.ZipFile(archive, "w") as z:  # rewritten (another size): read again, its new module found
        z.writestr("zipmod_one.py", "VALUE = 1\n")
        z.writestr("zipmod_two.py", "VALUE = 2\n")
    importlib.invalidate_caches()
    assert str(archive) in reads
    assert importlib.import_module("zipmod_two").VALUE == 2


@pytest.mark.parametrize("ids", ["whole numbers", "some text", "far apart"])
def test_a_rows_running_total_bucket_counts_the_boundaries_at_or_before_it(ids):
    # split._range_bucket: a binary search on one int64 key when the order fits in one ("whole numbers"), else a sort
    # (ids that need their text, or ids and lines too far apart for one int64); both must count the boundary rows
    # (sampled rows, so a row may be its own boundary) that sort before the row or are it: written out here.
    import random

    import numpy as np

    from csv_ingest.engine import rules

    rng = random.Random(41)
    pool = {"whole numbers": ["7", "8", "-3", None], "some text": ["7", "007", "x", None], "far apart": ["7", None]}
    for _ in range(60):
        n = rng.randint(1, 80)
        row_id = [rng.choice(pool[ids]) for _ in range(n)]
        if ids == "far apart":
            row_id = [v if v is None else str(rng.randint(0, 9) * 10**17) for v in row_id]
        far = 10**15 if ids == "far apart" else 500
        table = pa.table(
            {
                "status": pa.array([rng.choice(["a", "b", None]) for _ in range(n)], pa.string()),
                "date": pa.array([rng.choice([None, 1, 2, 3]) for _ in range(n)], pa.date32()),
                "id_number": pa.array([int(v) if v and v.lstrip("-").isdigit() else None for v in row_id], pa.int64()),
                "id": pa.array(row_id, pa.string()),
                "line_number": pa.array(rng.sample(range(1, far), n), pa.int64()),
            }
        )
        one_key = rules.running_total_key(*[table.column(c).combine_chunks() for c in rules.RUNNING_TOTAL_ORDER])
        if ids != "some text":  # (a draw of only "7"s and no ids fits in one key)
            assert (one_key is not None) == (ids == "whole numbers")
        key = [
            (
                (r["status"] is None, r["status"] or ""),
                (r["date"] is None, r["date"] or dt.date(1970, 1, 1)),
                (r["id_number"] is None, r["id_number"] or 0),
                (r["id"] is None, (r["id"] or "").encode()),
                r["line_number"],
            )
            for r in table.to_pylist()
        ]
        picks = sorted(rng.sample(range(n), rng.randint(0, min(n, 6))), key=lambda i: key[i])
        boundaries = table.take(pa.array(picks, pa.int64()))
        expected = [sum(1 for b in picks if key[b] <= key[i]) for i in range(n)]
        assert np.asarray(split._range_bucket(table, boundaries)).tolist() == expected


def test_the_planner_reads_the_odd_lines_spans_a_window_at_a_time_not_one_request_each(tmp_path, monkeypatch):
    # A hostile upload: a stray quote on every line (each line has an odd number of quotes, so each is tried as the
    # start of a multi-line record), with a few real multi-line records among them. The pairing is the same as one
    # read per span gives, and the driver's reads are a window at a time, not one per line (millions of GETs).
    from csv_ingest.engine import reader
    from csv_ingest.io import storage

    lines = [f'{i},"multi\nline {i}",m@example.com,2025-04-01,1,active' if i % 50 == 0 else f'{i},O"Brien,x,y,1,a'
             for i in range(400)]  # fmt: skip
    data = HEADER + "\n".join(lines).encode() + b"\n"
    path = tmp_path / "hostile.csv"
    path.write_bytes(data)
    uri, size = storage.local_uri(path), len(data)
    etag = storage.etag_of_local(uri)
    scans = [split.scan_range(uri, b, min(b + 997, size), size, etag) for b in range(0, size, 997)]
    reads = []
    real_read = storage.read_bytes

    def counted(*args, **kwargs):
        reads.append(kwargs.get("limit"))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(split.storage, "read_bytes", counted)
    monkeypatch.setattr(split, "SPAN_READ_BYTES", 1)  # a read per span: what the planner did before windows
    one_each = split.plan_parts(scans, size, uri, 6, etag)
    requests_one_each = len(reads)
    reads.clear()
    monkeypatch.setattr(split, "SPAN_READ_BYTES", 4096)
    windowed = split.plan_parts(scans, size, uri, 6, etag)
    assert windowed == one_each
    assert requests_one_each > 300  # every stray-quote line tried
    assert len(reads) <= size // 4096 + 2
    # and the multi-line records found are those a whole read finds
    records = reader.split_records(data, "hostile.csv", 6)
    assert sum(len(p.merged) for p in windowed) == 8 == sum(1 for t in records.text.to_pylist() if "\n" in t)
