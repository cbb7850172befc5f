"""One test per defect of the seed's Glue code (READING-GUIDE defects 4-8): each fails on the seed's behaviour."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from support import read_output, row, run_rules, stage_run

from csv_ingest.engine import rules, worker


def test_defect4_dates_in_dd_mm_yyyy_are_parsed_not_silently_nulled():
    out = run_rules([row(date="01-04-2025"), row(id_="2", date="31-02-2025")])
    assert out[0]["date"] == dt.date(2025, 4, 1)  # 1 April, not 4 January
    assert (out[1]["date"], out[1]["data_quality_issues"]) == (None, "invalid_date")  # null, but never silently


def test_defect5_minus_sign_kept_and_empty_amount_not_high():
    out = run_rules([row(amount="-20"), row(id_="2", amount="")])
    assert [(r["amount"], r["amount_category"]) for r in out] == [(Decimal(-20), "low"), (None, None)]


def test_defect6_running_total_is_per_file_and_total_ordered():
    a = run_rules([row(id_="2", amount="10"), row(id_="1", amount="1")], source_file="input/a.csv")
    # Same date: id 1 before id 2; the rules see one upload's rows only, so no other file enters its totals.
    assert [(r["id"], r["running_total_by_status"]) for r in a] == [("2", Decimal(11)), ("1", Decimal(1))]


def test_defect7_source_file_is_the_key_and_output_is_derived_from_it(messy_run):
    folder = next((messy_run["out"] / "processed" / "dups").glob("v=*"))
    assert folder.name.startswith("v=T")  # processed/<name>/v=<versionTag>/ from the manifest, not "input_<time>"
    assert {r[11] for r in read_output(folder)[1:]} == {"input/dups.csv"}


def test_defect8_input_read_once_and_duplicates_really_removed(tmp_path, monkeypatch):
    files = {"d.csv": b"id,name,email,date,amount,status\n" + b"1,A,a@example.com,01-04-2025,10,active\n" * 3}
    staged = stage_run(tmp_path, files)
    reads = []
    real_read = worker.storage.read_bytes
    monkeypatch.setattr(worker.storage, "read_bytes", lambda uri, **kw: reads.append(uri) or real_read(uri, **kw))
    layout = (6, tuple((c, i) for i, c in enumerate(rules.REQUIRED_COLUMNS)))
    entry = staged["manifest"].uploads[0]
    task = worker.UploadTask(entry, staged["data_root"], staged["output_root"], *layout, "2026-04-01T10:00:30.000Z",
                             rules.DEFAULT_DATE_FORMATS)  # fmt: skip
    result = worker.process_upload(task)
    assert len(reads) == 1
    assert (result.status, result.error) == ("processed", None)
    assert (result.rows_read, result.rows_processed, result.duplicates_removed) == (3, 1, 2)
    assert len(read_output(next((staged["out"] / "processed" / "d").glob("v=*")))) == 2  # header + 1 row
