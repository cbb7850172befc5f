"""The seed's 10-row sample against the checked-in expected output (hand-checked: dates, categories, totals)."""

from __future__ import annotations

import csv

from support import FIXTURES, PROCESSING_DATE, assert_frames_equal, output_text, rows_df, stage_run

import transform
from ingest import ARROW_MAX_BYTES, run_ingest, write_csv

EXPECTED_SCHEMA = (
    "id string, name string, email string, email_valid boolean, date date, amount double, amount_category string,"
    " status string, running_total_by_status string, data_quality_issues string, processing_date string,"
    " source_file string"
)


def sample_rows():
    with (FIXTURES / "sample.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [tuple(r[c] for c in transform.REQUIRED_COLUMNS) for r in reader]


def test_sample_transform_equals_expected_output(spark):
    actual = transform.output_rows(
        transform.transform(rows_df(spark, sample_rows(), "input/sample.csv"), PROCESSING_DATE)
    )
    expected = (
        spark.read.schema(EXPECTED_SCHEMA)
        .option("header", "true")
        .csv(str(FIXTURES / "sample_expected.csv"))
        .fillna("", subset=["data_quality_issues"])  # written as an empty field, read back as null
    )
    assert actual.columns == list(transform.OUTPUT_COLUMNS)
    assert_frames_equal(actual, expected)


def test_sample_written_csv_is_byte_identical_to_expected(spark, tmp_path):
    processed = transform.transform(rows_df(spark, sample_rows(), "input/sample.csv"), PROCESSING_DATE)
    write_csv(transform.output_rows(processed.coalesce(1).sortWithinPartitions("line_number")), str(tmp_path / "o"))
    assert output_text(tmp_path / "o") == (FIXTURES / "sample_expected.csv").read_text(encoding="utf-8")


def test_sample_through_the_job_on_both_engines_is_byte_identical_to_expected(spark, tmp_path):
    expected = (FIXTURES / "sample_expected.csv").read_text(encoding="utf-8")
    for engine, limit in (("arrow", ARROW_MAX_BYTES), ("spark", -1)):
        staged = stage_run(tmp_path / engine, {"sample.csv": (FIXTURES / "sample.csv").read_bytes()})
        roots = staged["data_root"], staged["output_root"]
        (result,) = run_ingest(spark, staged["manifest"], *roots, PROCESSING_DATE, arrow_max_bytes=limit)
        assert (engine, result.status, result.rows_processed) == (engine, "processed", 10)
        assert output_text(next((staged["out"] / "processed" / "sample").glob("v=*"))) == expected, engine
