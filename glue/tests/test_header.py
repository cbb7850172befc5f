"""Header inspection (pure Python): the per-file checks that run before Spark reads anything."""

from __future__ import annotations

import pytest

from csv_ingest.contract.errors import FileRejected
from csv_ingest.ingest import HEADER_PROBE_BYTES, Layout, inspect_header

STANDARD = Layout(6, (("id", 0), ("name", 1), ("email", 2), ("date", 3), ("amount", 4), ("status", 5)))


@pytest.mark.parametrize(
    "head",
    [
        b"id,name,email,date,amount,status\n1,a",
        b"\xef\xbb\xbfid,name,email,date,amount,status\r\n",
        b"ID , Name,EMAIL,date,amount,status",
        b'"id","name","email","date","amount","status"\r',
    ],
)
def test_standard_headers(head):
    assert inspect_header(head, "input/x.csv") == STANDARD


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"", "file is empty (no header row)"),
        (b"\xff\xfei\x00d\x00", "not UTF-8 text (UTF-16 byte-order mark)"),
        (b"id,name\x00,email\n", "not a CSV text file (NUL bytes in the header row)"),
        (b"id,nam\xe9,email\n", "not valid UTF-8 (header row, byte 7)"),
        (b"   \n1,2", "header row is empty"),
        (b"id;name;email;date;amount;status\n", "missing required column(s): id, name, email, date, amount, status"),
        (b"id,name,email,date,amount,status,id\n", "column(s) named more than once in the header: id"),
        (b"x" * HEADER_PROBE_BYTES, "no line break in the first 64 KiB: not a CSV file"),
    ],
)
def test_rejected_headers_name_the_file_and_reason(head, reason):
    with pytest.raises(FileRejected) as caught:
        inspect_header(head, "input/x.csv")
    assert str(caught.value).startswith(f"input/x.csv: {reason}")


def test_a_header_that_is_not_utf8_is_read_with_the_fallback_encoding_when_one_is_set():
    head = "id,name,email,date,amount,status,remarqu\xe9\n".encode("cp1252")
    assert inspect_header(head, "input/x.csv", "cp1252") == Layout(7, STANDARD.positions)
