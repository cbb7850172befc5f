"""Reading an upload: records (a quoted field may span lines), line numbers, encodings and fields."""

from __future__ import annotations

import pytest

from csv_ingest.engine import reader
from csv_ingest.engine.rules import REQUIRED_COLUMNS

POSITIONS = {c: i for i, c in enumerate(REQUIRED_COLUMNS)}
HEADER = b"id,name,email,date,amount,status\n"


def records(data, fallback=None):
    r = reader.split_records(HEADER + data, "input/x.csv", 6, fallback)
    return list(zip(r.line_number.to_pylist(), r.text.to_pylist(), strict=True)), r.rows_read, r.undecodable


def fields(lines):
    import pyarrow as pa

    parsed = reader.parse_fields(pa.array(lines, pa.string()), 6, POSITIONS)
    return [
        [parsed.values[c][i].as_py() for c in REQUIRED_COLUMNS] for i in range(len(lines))
    ], parsed.corrupt.to_pylist()


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_lines_end_at_lf_crlf_or_a_lone_cr_and_blank_lines_are_not_records(ending):
    data = ending.join([b"1,a,b,c,d,e", b"", b"  \t", b"\t", b"\t \t", b"2,a,b,c,d,e", b" x", b"\tx"]) + ending
    found, rows_read, _ = records(data)
    assert found == [(2, "1,a,b,c,d,e"), (7, "2,a,b,c,d,e"), (8, " x"), (9, "\tx")]
    assert rows_read == 4


@pytest.mark.parametrize(
    "data", [b"", b"\n", b"a", b"a\n", b"a\n\nb", b"a\nb\n\n", b"\n\na,b\n c ", b"x" * 10 + b"\n" * 3]
)
def test_lines_without_cr_take_the_lf_only_pass_with_the_same_lines(data):
    import numpy as np

    buf = np.frombuffer(data, np.uint8)
    fast, general = reader._lines(buf, has_cr=False), reader._lines(buf)
    assert [a.tolist() for a in fast] == [a.tolist() for a in general]


def test_lf_only_lines_are_start_and_end_of_each_line_without_an_empty_last_one():
    import numpy as np

    starts, ends = reader._lines(np.frombuffer(b"ab\n\ncd\n", np.uint8), has_cr=False)
    assert (starts.tolist(), ends.tolist()) == ([0, 3, 4], [2, 3, 6])


def test_a_last_line_without_terminator_is_a_record_and_a_bom_is_dropped():
    r = reader.split_records(b"\xef\xbb\xbf" + HEADER + b"1,a,b,c,d,e", "k", 6)
    assert r.text.to_pylist() == ["1,a,b,c,d,e"]


def test_a_quoted_field_spanning_lines_is_one_record_numbered_by_its_first_line():
    found, rows_read, _ = records(b'1,"two\nlines",b,c,d,e\n2,"three\r\n\r\nlines",b,c,d,e\n3,a,b,c,d,e\n')
    assert found == [(2, '1,"two\nlines",b,c,d,e'), (4, '2,"three\r\n\r\nlines",b,c,d,e'), (7, "3,a,b,c,d,e")]
    assert rows_read == 3


def test_a_stray_quote_is_a_record_of_its_own_line_and_the_next_lines_are_read_afresh():
    found, _, _ = records(b'1,"stray,b,c,d,e\n2,a,b,c,d,e\n3,"x""y",b,c,d,e\n')
    assert found == [(2, '1,"stray,b,c,d,e'), (3, "2,a,b,c,d,e"), (4, '3,"x""y",b,c,d,e')]


def test_two_stray_quotes_that_would_make_a_record_of_the_wrong_field_count_stay_separate():
    found, _, _ = records(b'1,"a,b,c,d,e\n2,b,c,d,e,"f\n3,a,b,c,d,e\n')
    assert [n for n, _ in found] == [2, 3, 4]


def test_undecodable_records_are_rejected_with_their_line_numbers_without_a_fallback():
    found, rows_read, bad = records(b"1,a,b,c,d,e\n2,Ren\xe9,b,c,d,e\n3,a,b,c,d,e\n4,\xff,b,c,d,e\n")
    assert [n for n, _ in found] == [2, 4]
    assert rows_read == 4
    assert bad == [
        (3, "2,Ren\\xe9,b,c,d,e", "not valid UTF-8 (byte 6 of the record)"),
        (5, "4,\\xff,b,c,d,e", "not valid UTF-8 (byte 3 of the record)"),
    ]


def test_with_a_fallback_encoding_undecodable_records_are_decoded_with_it():
    found, rows_read, bad = records(b"1,a,b,c,d,e\n2,Ren\xe9 \x80,b,c,d,e\n", fallback="cp1252")
    assert found == [(2, "1,a,b,c,d,e"), (3, "2,René €,b,c,d,e")]
    assert (rows_read, bad) == (2, [])


def test_fields_follow_rfc_4180_and_empty_fields_are_missing():
    values, corrupt = fields(
        ['1,"Smith, John","",,"a""b",x', '2,Jane "jj" Doe,e,d,a,s', '3,"multi\nline",e,d,a,s', ",n,,d,a,"]
    )
    assert values == [
        ["1", "Smith, John", None, None, 'a"b', "x"],
        ["2", 'Jane "jj" Doe', "e", "d", "a", "s"],
        ["3", "multi\nline", "e", "d", "a", "s"],
        [None, "n", None, "d", "a", None],  # empty unquoted fields (first, inner, last) are missing too
    ]
    assert corrupt == [False, False, False, False]


def test_records_with_another_field_count_are_corrupt_with_a_reason():
    import numpy as np
    import pyarrow as pa

    lines = ["1,a,b", "1,a,b,c,d,e,f", '1,"open,b,c,d,e']
    parsed = reader.parse_fields(pa.array(lines), 6, POSITIONS)
    assert parsed.corrupt.to_pylist() == [True, True, True]
    assert reader.reason(pa.array(lines), np.asarray(parsed.field_count), 6).to_pylist() == [
        "expected 6 fields as in the header, found 3",
        "expected 6 fields as in the header, found 7",
        "malformed CSV record (unbalanced quotes)",
    ]


def test_parsing_a_small_upload_starts_no_threads(monkeypatch):
    # A thread pool per upload cost more than parsing a 1 KB upload (a run of 1,000 of them spent most of its time
    # starting threads): one slice of records is parsed on the calling thread.
    import pyarrow as pa

    def no_pool(*args, **kwargs):
        raise AssertionError("a thread pool was started")

    monkeypatch.setattr(reader, "ThreadPoolExecutor", no_pool)
    positions = {c: i for i, c in enumerate(("id", "name", "email", "date", "amount", "status"))}
    parsed = reader.parse_fields(pa.array(["1,a,b,c,d,e", '2,"x, y",b,c,d,e', "3,a"]), 6, positions)
    assert parsed.values["name"].to_pylist() == ["a", "x, y", "a"]
    assert parsed.corrupt.to_pylist() == [False, False, True]
