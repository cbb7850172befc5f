"""The shared manifest/stats formats, checked against the TypeScript side's test vectors."""

from __future__ import annotations

import json

import pytest
from support import VECTORS

from csv_ingest.contract.documents import FileResult, build_stats, file_stats_lines, parse_manifest
from csv_ingest.contract.errors import ManifestError


def load_vector(name):
    return (VECTORS / name).read_text(encoding="utf-8")


def test_parses_the_manifest_vector():
    m = parse_manifest(load_vector("manifest.v1.json"), "manifest.v1.json")
    assert (m.run_key, m.bucket, m.stats_key) == (
        "20260401T100000Z-a1b2c3d4",
        "csv-ingest-data",
        "stats/runs/20260401T100000Z-a1b2c3d4.json",
    )
    assert m.file_stats_key == "stats/files/ingest_date=2026-04-01/20260401T100000Z-a1b2c3d4.jsonl"
    assert m.uploads[1].parquet_prefix == (
        "parquet/ingest_date=2026-04-01/customers/v=20260401T095950Z-3HL4kqtJlcpXroDTDmJ.rSDbfrHd8FVs/"
    )
    assert [u.key for u in m.uploads] == ["input/sales 2025/é.csv", "input/customers.csv"]
    assert m.uploads[0].version_id is None
    assert m.uploads[1].output_prefix == "processed/customers/v=20260401T095950Z-3HL4kqtJlcpXroDTDmJ.rSDbfrHd8FVs/"


def test_builds_exactly_the_stats_vector():
    m = parse_manifest(load_vector("manifest.v1.json"), "manifest.v1.json")
    ok = FileResult(m.uploads[0], rows_read=12, rows_processed=10, rows_rejected=1, duplicates_removed=1)
    ok.quality_issues = {"invalid_email": 1, "invalid_date": 1}
    failed = FileResult(m.uploads[1]).fail("input/customers.csv: missing required column(s): amount")
    assert build_stats(m, "2026-04-01T10:00:30.000Z", [ok, failed]) == json.loads(load_vector("stats.v1.json"))


def _two_files(m, first, second):
    a = FileResult(m.uploads[0], **first)
    b = FileResult(m.uploads[1], **second)
    return build_stats(m, "2026-04-01T10:00:30.000Z", [a, b])


def test_stats_totals_are_sums_of_the_files_each_count_in_its_own_field():
    m = parse_manifest(load_vector("manifest.v1.json"), "manifest.v1.json")
    # Distinct values everywhere: a total assigned from one file, or one count reported as another, shows.
    stats = _two_files(
        m,
        {"rows_read": 20, "rows_processed": 11, "rows_rejected": 3, "duplicates_removed": 6,
         "quality_issues": {"invalid_date": 2, "missing_id": 1}},
        {"rows_read": 9, "rows_processed": 5, "rows_rejected": 1, "duplicates_removed": 3,
         "quality_issues": {"invalid_date": 4}},
    )  # fmt: skip
    assert stats["totals"] == {
        "files": 2,
        "filesProcessed": 2,
        "filesFailed": 0,
        "rowsRead": 29,
        "rowsProcessed": 16,
        "rowsRejected": 4,
        "duplicatesRemoved": 9,
        "qualityIssues": {"invalid_date": 6, "missing_id": 1},
    }
    assert [(f["rowsRejected"], f["duplicatesRemoved"]) for f in stats["files"]] == [(3, 6), (1, 3)]


def test_per_file_stats_are_json_lines_one_object_per_file():
    m = parse_manifest(load_vector("manifest.v1.json"), "manifest.v1.json")
    stats = _two_files(m, {"rows_read": 2, "rows_processed": 2}, {"rows_read": 1, "rows_processed": 1})
    text = file_stats_lines(stats)
    assert text.endswith("\n")
    assert text.count("\n") == 2
    first, second = (json.loads(line) for line in text.splitlines())
    assert (first["runKey"], first["processingDate"], first["key"], first["rowsRead"]) == (
        "20260401T100000Z-a1b2c3d4", "2026-04-01T10:00:30.000Z", "input/sales 2025/é.csv", 2,
    )  # fmt: skip
    assert (second["key"], second["rowsProcessed"]) == ("input/customers.csv", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "manifest is not JSON"),
        ('{"format": "other/1"}', "manifest format is 'other/1'"),
        ('{"format": "csv-ingest-manifest/1", "uploads": [{"key": 1}]}', "uploads[0]: field 'uploadId'"),
        ('{"format": "csv-ingest-manifest/1", "uploads": []}', "field 'runKey' is missing"),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(text, message):
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(text, "m.json")
