"""One test per defect of the seed's Glue code (READING-GUIDE defects 4-8): each fails on the seed's behaviour."""

from __future__ import annotations

import datetime as dt
import shutil

from support import PROCESSING_DATE, read_output, row, rows_df, run_transform, stage_run

import ingest
import transform


def test_defect4_dates_in_dd_mm_yyyy_are_parsed_not_silently_nulled(spark):
    out = run_transform(spark, [row(date="01-04-2025"), row(id_="2", date="31-02-2025")])
    assert out[0]["date"] == dt.date(2025, 4, 1)  # 1 April, not 4 January
    assert (out[1]["date"], out[1]["data_quality_issues"]) == (None, "invalid_date")  # null, but never silently


def test_defect5_minus_sign_kept_and_empty_amount_not_high(spark):
    out = run_transform(spark, [row(amount="-20"), row(id_="2", amount="")])
    assert [(r["amount"], r["amount_category"]) for r in out] == [(-20.0, "low"), (None, None)]


def test_defect6_running_total_is_per_file_and_total_ordered(spark):
    a = [row(id_="2", date="01-04-2025", amount="10"), row(id_="1", date="01-04-2025", amount="1")]
    b = [row(id_="1", date="01-04-2025", amount="500")]
    together = rows_df(spark, a, "input/a.csv").unionByName(rows_df(spark, b, "input/b.csv"))
    got = transform.transform(together, PROCESSING_DATE).filter("source_file = 'input/a.csv'")
    # Same date: id 1 before id 2; file b's 500 never enters file a's totals.
    assert sorted((r["id"], r["running_total_by_status"]) for r in got.collect()) == [("1", 1.0), ("2", 11.0)]


def test_defect7_source_file_is_the_key_and_output_is_derived_from_it(messy_run):
    folder = next((messy_run["out"] / "processed" / "dups").glob("v=*"))
    assert folder.name == "v=T8"  # processed/<name>/v=<versionTag>/ from the manifest, not "input_<time>"
    assert {r[11] for r in read_output(folder)[1:]} == {"input/dups.csv"}


def test_defect8_input_read_once_and_duplicates_really_removed(spark, tmp_path, monkeypatch):
    files = {"d.csv": b"id,name,email,date,amount,status\n" + b"1,A,a@example.com,01-04-2025,10,active\n" * 3}
    staged = stage_run(tmp_path, files)
    real_summary = transform.duplicate_summary
    deleted = []

    def summary_after_deleting_the_input(*args, **kwargs):
        # Called after the first pass has read the file; if any later action read it again, the run would fail.
        shutil.rmtree(tmp_path / "stage")
        deleted.append(True)
        return real_summary(*args, **kwargs)

    monkeypatch.setattr(ingest.transform, "duplicate_summary", summary_after_deleting_the_input)
    roots = (staged["data_root"], staged["output_root"])
    # The Spark plan (arrow_max_bytes=-1); the Arrow engine reads an upload's bytes once by construction
    # (test_isolation.py::test_arrow_engine_reads_each_upload_once).
    (result,) = ingest.run_ingest(spark, staged["manifest"], *roots, PROCESSING_DATE, arrow_max_bytes=-1)
    assert deleted
    assert (result.status, result.error) == ("processed", None)
    assert (result.rows_read, result.rows_processed, result.duplicates_removed) == (3, 1, 2)
    assert len(read_output(next((staged["out"] / "processed" / "d").glob("v=*")))) == 2  # header + 1 row
