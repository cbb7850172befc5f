"""Messy uploads in one run: each ends processed (with exact rows) or failed (with a reason naming the file)."""

from __future__ import annotations

from support import PROCESSING_DATE, read_output

import transform

HEADER_ROW = list(transform.OUTPUT_COLUMNS)
REJECTED_HEADER = list(transform.REJECTED_COLUMNS)


def out(messy_run, stem, rejected=False):
    prefix = "processed/rejected" if rejected else "processed"
    return next((messy_run["out"] / prefix / stem).glob("v=*"))


def test_bom_crlf_quoted_fields_and_unicode_names(messy_run):
    rows = read_output(out(messy_run, "bom_crlf_quotes"))
    f = "input/bom_crlf_quotes.csv"
    d = PROCESSING_DATE
    assert rows == [
        HEADER_ROW,
        ["1", "Smith, John", "john@example.com", "true", "2025-04-01", "1234.5", "high", "active", "1234.5", "", d, f],
        ["2", 'Jane "jj" Doe', "jane@example.com", "true", "2025-04-02", "-20.0", "low", "active", "1214.5", "", d, f],
        ["3", "Zoë Ñúñez", "zoe@example.com", "true", "", "", "", "pending", "", "invalid_date;missing_amount", d, f],
        ["4", "李 小龍", "li@example.com", "true", "2025-04-02", "", "", "pending", "", "invalid_amount", d, f],
    ]
    r = messy_run["results"]["bom_crlf_quotes.csv"]
    assert (r.status, r.rows_read, r.rows_processed, r.rows_rejected) == ("processed", 4, 4, 0)
    assert r.quality_issues == {"invalid_date": 1, "missing_amount": 1, "invalid_amount": 1}


def test_too_few_and_too_many_fields_are_rejected_with_line_numbers(messy_run):
    rejected = read_output(out(messy_run, "fields", rejected=True))
    assert rejected == [
        REJECTED_HEADER,
        ["input/fields.csv", "3", "expected 6 fields as in the header, found 3", "2,C D,c@example.com"],
        [
            "input/fields.csv",
            "5",
            "expected 6 fields as in the header, found 7",
            "3,E F,e@example.com,01-04-2025,10,active,extra",
        ],
    ]
    assert [r[0] for r in read_output(out(messy_run, "fields"))[1:]] == ["1", "4"]
    r = messy_run["results"]["fields.csv"]
    # The blank line 4 is not a row.
    assert (r.rows_read, r.rows_processed, r.rows_rejected, r.duplicates_removed) == (4, 2, 2, 0)


def test_missing_column_fails_the_file_with_its_name(messy_run):
    r = messy_run["results"]["missing_col.csv"]
    assert r.status == "failed"
    assert r.error.startswith("input/missing_col.csv: missing required column(s): amount")
    assert not (messy_run["out"] / "processed" / "missing_col").exists()


def test_empty_file_fails(messy_run):
    r = messy_run["results"]["empty.csv"]
    assert (r.status, r.error) == ("failed", "input/empty.csv: file is empty (no header row)")


def test_header_only_file_is_processed_with_no_rows(messy_run):
    assert read_output(out(messy_run, "header_only")) == [HEADER_ROW]
    assert read_output(out(messy_run, "header_only", rejected=True)) == [REJECTED_HEADER]
    r = messy_run["results"]["header_only.csv"]
    assert (r.status, r.rows_read, r.rows_processed) == ("processed", 0, 0)


def test_non_utf8_bytes_fail_the_file_naming_the_line(messy_run):
    r = messy_run["results"]["latin1.csv"]
    assert (r.status, r.error) == ("failed", "input/latin1.csv: not valid UTF-8 (first bad bytes on line 2)")
    assert not (messy_run["out"] / "processed" / "latin1").exists()


def test_binary_file_fails_as_not_csv(messy_run):
    r = messy_run["results"]["binary.csv"]
    assert (r.status, r.error) == ("failed", "input/binary.csv: not valid UTF-8 (header row, byte 1)")


def test_columns_are_found_by_header_name_in_any_order(messy_run):
    rows = read_output(out(messy_run, "reordered"))
    assert rows[1] == [
        "9", "Reo Rdr", "r@example.com", "true", "2025-04-01", "5.0", "low", "active", "5.0", "",
        PROCESSING_DATE, "input/reordered.csv",
    ]  # fmt: skip


def test_exact_duplicates_removed_and_counted_duplicate_ids_flagged(messy_run):
    rows = read_output(out(messy_run, "dups"))
    assert [(r[0], r[1], r[9]) for r in rows[1:]] == [
        ("1", "A", ""),
        ("2", "B", "duplicate_id"),
        ("2", "B2", "duplicate_id"),
    ]
    r = messy_run["results"]["dups.csv"]
    assert (r.rows_read, r.rows_processed, r.rows_rejected, r.duplicates_removed) == (4, 3, 0, 1)
    assert r.quality_issues == {"duplicate_id": 2}


def test_every_processed_file_reconciles(messy_run):
    for r in messy_run["results"].values():
        if r.status == "processed":
            assert r.rows_read == r.rows_processed + r.rows_rejected + r.duplicates_removed, r.entry.key
