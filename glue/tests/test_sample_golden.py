"""The seed's 10-row sample against the checked-in expected output (hand-checked: dates, categories, totals), in
the output contract's form (processing_date as an Athena timestamp)."""

from __future__ import annotations

from support import FIXTURES, PROCESSING_DATE, output_text, stage_run

from csv_ingest.ingest import run_ingest


def test_sample_through_the_job_is_byte_identical_to_expected(spark, tmp_path):
    expected = (FIXTURES / "sample_expected.csv").read_text(encoding="utf-8")
    staged = stage_run(tmp_path, {"sample.csv": (FIXTURES / "sample.csv").read_bytes()})
    (result,) = run_ingest(spark, staged["manifest"], staged["data_root"], staged["output_root"], PROCESSING_DATE)
    assert (result.status, result.rows_read, result.rows_processed) == ("processed", 10, 10)
    assert output_text(next((staged["out"] / "processed" / "sample").glob("v=*"))) == expected
