"""The shared manifest/stats formats, checked against the TypeScript side's test vectors."""

from __future__ import annotations

import json

import pytest
from support import VECTORS

from contract import FileResult, build_stats, parse_manifest
from errors import ManifestError


def load_vector(name):
    return (VECTORS / name).read_text(encoding="utf-8")


def test_parses_the_manifest_vector():
    m = parse_manifest(load_vector("manifest.v1.json"), "manifest.v1.json")
    assert (m.run_key, m.bucket, m.stats_key) == (
        "20260401T100000Z-a1b2c3d4",
        "csv-ingest-data",
        "processed/stats/20260401T100000Z-a1b2c3d4.json",
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
