"""Reading one upload: bytes -> CSV records (a quoted field may span lines) -> the six raw values of each record.

- `split_records`: the records after the header, each with the number of its first physical line. A line ends at
  "\\n", "\\r\\n" or a lone "\\r". A record is one line, or, when a line holds an odd number of '"' (a quoted
  field left open), that line and the following ones up to the next line with an odd number of quotes, if that
  span parses as one CSV record of the header's field count; otherwise the opening line alone is a record (it is
  rejected: unbalanced quotes) and the lines after it are read afresh. Blank lines are not records.
- Bytes that are not UTF-8: with a fallback encoding (the job's `--fallback_encoding`, e.g. cp1252) such a record
  is decoded with it; without one, only that record is rejected, with its line number.
- `parse_fields`: the REQUIRED_COLUMNS of each record by header position (RFC 4180: "" inside quotes is a quote;
  an empty field, quoted or not, is missing) and the records whose field count differs from the header's.
"""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from csv_ingest.engine.rules import REQUIRED_COLUMNS

# A quoted field may run over at most this many lines (a record longer than that is a stray quote, not a field).
MAX_RECORD_LINES = 1000
_SLICE_RECORDS = 1 << 17
_QUOTED_FIELD = r'"(?:[^"\x00]|"")*"'
_PLAIN_FIELD = r'[^",\x00\r\n]*'
# Records whose fields are all plain or cleanly quoted (closing quote then "," or the end): read by Arrow's reader.
_WELL_FORMED = rf"^(?:{_PLAIN_FIELD}|{_QUOTED_FIELD})(?:,(?:{_PLAIN_FIELD}|{_QUOTED_FIELD}))*$"
# A quote that opens a field; quotes elsewhere are literal characters of an unquoted field.
_OPENING_QUOTE = r'(?:^|,)"'


@dataclass(frozen=True)
class Records:
    """The records after the header, in order, blank ones left out."""

    text: pa.Array  # string (large_string for uploads of 2 GiB and more)
    line_number: pa.Int64Array  # the record's first physical line (the header is line 1)
    rows_read: int  # records that are rows: non-blank (undecodable ones included)
    undecodable: list[tuple[int, str, str]]  # (line number, raw line shown with \\x escapes, reason)


@dataclass(frozen=True)
class Parsed:
    values: dict[str, pa.Array]  # REQUIRED_COLUMNS: raw strings, null for an empty field
    corrupt: pa.BooleanArray  # the field count differs from the header's
    field_count: np.ndarray  # fields found per record


def _lines(buf: np.ndarray, has_cr: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (terminator excluded) of every physical line of `buf`. `has_cr` False: `buf` holds no CR, so
    every line ends at a LF (one pass instead of the CR cases' several)."""
    n = len(buf)
    if not has_cr:
        ends_at = np.flatnonzero(buf == 10)
        starts = np.empty(len(ends_at) + 1, np.int64)
        starts[0] = 0
        starts[1:] = ends_at + 1
        ends = np.empty(len(ends_at) + 1, np.int64)
        ends[:-1] = ends_at
        ends[-1] = n
        if starts[-1] >= n:  # no empty last line after a final terminator
            starts, ends = starts[:-1], ends[:-1]
        return starts, ends
    lf = buf == 10
    cr = buf == 13
    lone_cr = cr.copy()
    lone_cr[:-1] &= ~lf[1:]
    ends_at = np.flatnonzero(lf | lone_cr)  # the terminator's last byte
    crlf = lf[ends_at] & (ends_at > 0) & cr[np.maximum(ends_at - 1, 0)]
    line_end = ends_at - crlf
    starts = np.r_[0, ends_at + 1]
    ends = np.r_[line_end, n]
    if starts[-1] >= n:  # no empty last line after a final terminator
        starts, ends = starts[:-1], ends[:-1]
    return starts.astype(np.int64), ends.astype(np.int64)


def _parses_as_one_record(text: str, field_count: int) -> bool:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == field_count


def pair_odd_lines(odd: list[int], span_text, field_count: int) -> list[tuple[int, int]]:
    """The multi-line records: walking the lines with an odd number of quotes in order, a line and the next such
    line make one record when `span_text(a, b)` (lines a..b) parses as one record of `field_count` fields within
    MAX_RECORD_LINES; otherwise the line stands alone (unbalanced quotes) and the next odd line is tried afresh."""
    merged = []
    i = 0
    while i < len(odd):
        a = odd[i]
        if i + 1 < len(odd) and odd[i + 1] - a < MAX_RECORD_LINES:
            b = odd[i + 1]
            if _parses_as_one_record(span_text(a, b), field_count):
                merged.append((a, b))
                i += 2
                continue
        i += 1
    return merged


def odd_quote_lines(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Indexes of the lines holding an odd number of '"'."""
    quotes = np.flatnonzero(np.frombuffer(data, np.uint8) == 34)
    if not len(quotes):
        return np.zeros(0, np.int64)
    # The line of each quote: the first line ending after it (a quote is never a terminator, and every byte that
    # is not a terminator is in a line); then the quotes per line.
    per_line = np.bincount(np.searchsorted(ends, quotes), minlength=len(ends))
    return np.flatnonzero(per_line % 2 == 1)


def split_records(
    data: bytes,
    key: str,
    field_count: int,
    fallback_encoding: str | None = None,
    first_line: int = 0,
    merged: list[tuple[int, int]] | None = None,
) -> Records:
    """The records of one upload after its header line (see the module's docstring). A part of a big upload:
    `data` starts at line index `first_line` (0 is the header line) and `merged` gives its multi-line records
    (line indexes within `data`), worked out over the whole upload by split.py."""
    if first_line == 0 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    starts, ends = _lines(np.frombuffer(data, np.uint8), b"\r" in data)
    if merged is None:
        odd = [int(i) for i in odd_quote_lines(data, starts, ends) if i > 0 or first_line > 0]

        def span_text(a: int, b: int) -> str:
            return data[starts[a] : ends[b]].decode("utf-8", "replace")

        merged = pair_odd_lines(odd, span_text, field_count)
    record_of = np.arange(len(starts))
    for a, b in merged:
        record_of[a : b + 1] = a
    first = np.flatnonzero(record_of == np.arange(len(record_of)))
    if first_line == 0:
        first = first[1:]  # the header
    last = np.r_[first[1:] - 1, len(record_of) - 1] if len(first) else first
    r_start, r_end = starts[first], ends[last]
    # Records as one binary array: [start, end) of each record, the terminators between them as dropped elements.
    offsets = np.empty(2 * len(first) + 1, np.int64)
    offsets[0:-1:2] = r_start
    offsets[1::2] = r_end
    offsets[-1] = len(data)
    if len(first):
        offsets[0] = r_start[0]
    both = (
        pa.Array.from_buffers(pa.large_binary(), 2 * len(first), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        if len(first)
        else pa.array([], pa.large_binary())
    )
    raw = both.take(pa.array(np.arange(0, 2 * len(first), 2, dtype=np.int64))) if len(first) else both
    numbers = first + first_line + 1  # 1-based line numbers
    text_type = pa.string() if len(data) < 2**31 else pa.large_string()
    undecodable: list[tuple[int, str, str]] = []
    try:
        text = raw.cast(text_type)
    except pa.ArrowInvalid:
        bad = _bad_utf8(raw)
        decoded, keep = [], np.ones(len(raw), bool)
        for i in bad:
            value = raw[i].as_py()
            if fallback_encoding:
                try:
                    decoded.append(value.decode(fallback_encoding))
                    continue
                except UnicodeDecodeError:
                    pass
            err = _utf8_error(value)
            undecodable.append((int(numbers[i]), value.decode("utf-8", "backslashreplace"), err))
            keep[i] = False
            decoded.append(None)
        where = pa.array(np.isin(np.arange(len(raw)), bad))
        replacement = pa.array([d.encode() if d is not None else b"" for d in decoded], pa.large_binary())
        fixed = pc.replace_with_mask(raw, where, replacement)
        text = pc.filter(fixed, pa.array(keep)).cast(text_type)
        numbers = numbers[keep]
    blank = _blank(text)
    line_number = pa.array(numbers, pa.int64())
    if blank.true_count:
        rows = pc.invert(blank)
        text, line_number = pc.filter(text, rows), pc.filter(line_number, rows)
    return Records(text, line_number, len(text) + len(undecodable), undecodable)


def _utf8_error(value: bytes) -> str:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not valid UTF-8 (byte {err.start + 1} of the record)"
    return "not valid UTF-8"


def _bad_utf8(values: pa.Array) -> list[int]:
    """Indexes of the values that are not UTF-8 (bisecting with Arrow's own check)."""
    bad: list[int] = []

    def visit(start: int, length: int) -> None:
        try:
            values.slice(start, length).cast(pa.large_string())
        except pa.ArrowInvalid:
            if length == 1:
                bad.append(start)
                return
            half = length // 2
            visit(start, half)
            visit(start + half, length - half)

    visit(0, len(values))
    return bad


def _blank(text: pa.Array) -> pa.BooleanArray:
    """A record of nothing but spaces and tabs is blank."""
    if not len(text):
        return pa.array([], pa.bool_())
    # Only an empty record or one that starts with a space or tab can be blank: the pattern runs on those only.
    first = pc.utf8_slice_codeunits(text, 0, 1)
    maybe = pc.or_(pc.equal(first, ""), pc.or_(pc.equal(first, " "), pc.equal(first, "\t")))
    if not maybe.true_count:
        return maybe
    where = np.flatnonzero(maybe.to_numpy(zero_copy_only=False))
    blank = np.zeros(len(text), bool)
    blank[where] = pc.match_substring_regex(text.take(pa.array(where)), r"^[ \t]*$").to_numpy(zero_copy_only=False)
    return pa.array(blank)


def parse_fields(text: pa.Array, field_count: int, positions: dict[str, int]) -> Parsed:
    """The REQUIRED_COLUMNS at their header positions and the corrupt mask, in slices of records, several at once."""
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    if missing:
        raise ValueError(f"positions lack column(s): {', '.join(missing)}")
    slices = [text.slice(start, _SLICE_RECORDS) for start in range(0, len(text), _SLICE_RECORDS)] or [text]
    if len(slices) == 1:  # no thread pool for one slice: starting threads costs more than a small upload's parse
        parts = [_parse_slice(slices[0], field_count, positions)]
    else:
        with ThreadPoolExecutor(min(len(slices), os.cpu_count() or 1, 4)) as pool:
            parts = list(pool.map(lambda part: _parse_slice(part, field_count, positions), slices))
    counts = np.concatenate([c for _, c in parts])
    values = {c: pa.concat_arrays([v[c] for v, _ in parts]) for c in REQUIRED_COLUMNS}
    return Parsed(values, pa.array(counts != field_count), counts)


def _parse_slice(text: pa.Array, field_count: int, positions: dict[str, int]) -> tuple[dict[str, pa.Array], np.ndarray]:
    """parse_fields on a slice of records: the values and each record's field count."""
    # Every record split on ",": exact where no field opens with '"' (a quote inside an unquoted field is a
    # literal character).
    pieces = pc.split_pattern(text, ",")
    offsets = _offsets(pieces)
    counts = np.diff(offsets)
    fields = pieces.values
    with_quote = np.flatnonzero(_matches(text, '"'))
    quoted = with_quote[_matches(text.take(with_quote), _OPENING_QUOTE)]
    q_values, q_counts = _parse_quoted(text.take(quoted), field_count, positions)
    split_counts = counts.copy()
    counts[quoted] = q_counts

    pool = fields
    if len(quoted):
        pool = pa.concat_arrays([fields, *[q_values[c].cast(fields.type) for c in REQUIRED_COLUMNS]])
    index_type = np.int32 if len(pool) < 2**31 else np.int64
    empty = np.diff(_offsets(pool)) == 0  # an empty field is missing: null (taken as null at once)
    values = {}
    for k, column in enumerate(REQUIRED_COLUMNS):
        pos = positions[column]
        where = (offsets[:-1] + pos).astype(index_type)
        absent = split_counts <= pos
        where[absent] = 0
        where[quoted] = len(fields) + k * len(quoted) + np.arange(len(quoted), dtype=index_type)
        absent[quoted] = False
        values[column] = pool.take(pa.array(where, mask=absent | empty[where]))
    return values, counts


def _offsets(arr: pa.Array) -> np.ndarray:
    """The offsets of a (large) string or list array, as numpy, zero-copy."""
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_list(arr.type)
    offsets = np.frombuffer(arr.buffers()[1], np.int64 if large else np.int32)
    return offsets[arr.offset : arr.offset + len(arr) + 1]


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(text, pattern).to_numpy(zero_copy_only=False)


def _python_fields(record: str) -> list[str | None]:
    """A record Arrow's reader does not take (a stray quote, text after a closing quote): Python's lenient csv
    reader, its rows (a broken quote can make several) taken together."""
    fields: list[str | None] = []
    for row in csv.reader(io.StringIO(record, newline="")):
        fields += [f or None for f in row]
    return fields or [None]


def _parse_quoted(
    text: pa.Array, field_count: int, positions: dict[str, int]
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Records with a field that opens with '"': their values and field counts. Well-formed records of the header's
    field count go through Arrow's CSV reader; the others (rare) through Python's csv module."""
    n = len(text)
    counts = np.full(n, field_count, np.int64)
    if not n:
        return {c: pa.array([], pa.string()) for c in REQUIRED_COLUMNS}, counts
    well_formed = np.flatnonzero(_matches(text, _WELL_FORMED))
    table = _read_csv(text.take(well_formed), field_count, positions)
    fast = well_formed[table.column("i").to_numpy()] if table else np.zeros(0, np.int64)
    slow = np.ones(n, bool)
    slow[fast] = False
    slow = np.flatnonzero(slow)
    rows = [_python_fields(r) for r in text.take(slow).to_pylist()]
    counts[slow] = [len(r) for r in rows]
    values = {}
    for c in REQUIRED_COLUMNS:
        pos = positions[c]
        values[c] = table.column(f"c{pos}").combine_chunks() if table else pa.array([], pa.string())
        if len(slow):
            order = np.empty(n, np.int64)
            order[np.concatenate([fast, slow])] = np.arange(n)
            slow_values = pa.array([r[pos] if pos < len(r) else None for r in rows], pa.string())
            values[c] = pa.concat_arrays([values[c].cast(pa.string()), slow_values]).take(pa.array(order))
    return values, counts


def _read_csv(text: pa.Array, field_count: int, positions: dict[str, int]) -> pa.Table | None:
    """Well-formed records read by Arrow (null for empty fields): `i` (the record's index in `text`) and the needed
    fields `c<position>` of the records of `field_count` fields; Arrow skips the others."""
    if not len(text):
        return None
    numbered = pc.binary_join_element_wise(pc.cast(pa.array(np.arange(len(text))), pa.string()), text, ",")
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(text)], pa.int32()), numbered), "\n")[0]
    longest = int(np.diff(_offsets(numbered)).max())
    names = ["i", *[f"c{k}" for k in range(field_count)]]
    needed = sorted({f"c{k}" for k in positions.values()})
    return pa_csv.read_csv(
        pa.BufferReader(joined.as_buffer()),
        read_options=pa_csv.ReadOptions(column_names=names, block_size=max(1 << 20, 2 * longest)),
        parse_options=pa_csv.ParseOptions(
            quote_char='"',
            double_quote=True,
            escape_char=False,
            newlines_in_values=True,
            ignore_empty_lines=False,
            invalid_row_handler=lambda row: "skip",
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={"i": pa.int64(), **{name: pa.string() for name in names[1:]}},
            include_columns=["i", *needed],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def reason(text: pa.Array, counts: np.ndarray, field_count: int) -> pa.Array:
    """The rejected-row reason of each corrupt record: unbalanced quotes when it has an odd number of '"', else its
    field count against the header's."""
    odd = pc.equal(pc.bit_wise_and(pc.count_substring(text, '"'), 1), 1)
    expected = pc.binary_join_element_wise(
        f"expected {field_count} fields as in the header, found ", pc.cast(pa.array(counts), pa.string()), ""
    )
    return pc.if_else(odd, "malformed CSV record (unbalanced quotes)", expected)
