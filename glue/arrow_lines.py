"""The Arrow engine's reading and parsing: one upload's bytes -> its lines -> the six raw values of each line, with
the answers of the Spark path (`spark.read.text`, `transform.parse_lines`, `transform.rejected_rows`) for those bytes.

- `split_lines`: lines as Hadoop's LineRecordReader cuts them ("\\n", "\\r\\n" or a lone "\\r"; no empty last line after
  a final terminator), their 1-based numbers (line 1, the header, is not returned) and which are blank; a file that is
  not UTF-8 is rejected naming its first bad line, as `ingest._process` does.
- `parse_fields`: what Spark's `from_csv` (univocity, PERMISSIVE) makes of each line. Lines without '"' are split on
  "," in Arrow; well-formed quoted lines go through Arrow's CSV reader; the few others are parsed in Python by
  `_SparkCsvLine`, a transcription of univocity 2.9.1's CsvParser for Spark's CSV_OPTIONS, checked against Spark.
- `reason`: the rejected-row reason of a malformed line, as `transform.rejected_rows` words it.
"""

from __future__ import annotations

import array
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

import transform
from errors import FileRejected

# Lines parsed per task: small slices are faster to split and take from, and several run at once.
_SLICE_LINES = 1 << 17
# univocity's maxColumns under Spark's CSV options: a line with more fields fails the whole Spark job.
MAX_FIELDS = 20480
_QUOTED_FIELD = r'"(?:[^"\x00]|"")*"'
_PLAIN_FIELD = r'[^",\x00]*'
# Lines whose fields are all plain or cleanly quoted (closing quote then "," or the end): standard CSV for univocity.
_WELL_FORMED = rf"^(?:{_PLAIN_FIELD}|{_QUOTED_FIELD})(?:,(?:{_PLAIN_FIELD}|{_QUOTED_FIELD}))*$"
# A quote that opens a field; quotes elsewhere are literal characters of an unquoted field.
_OPENING_QUOTE = r'(?:^|,)"'


@dataclass(frozen=True)
class Lines:
    """Every physical line after the header, in order: text (terminators removed), line number, blank or not."""

    text: pa.Array  # string (large_string for uploads of 2 GiB and more)
    line_number: pa.Int64Array
    blank: pa.BooleanArray  # btrim(line, ' \t') == '': not a row, not counted as read


@dataclass(frozen=True)
class Parsed:
    """Per line: the REQUIRED_COLUMNS as Spark's parse_lines gives them (raw strings or null), and `corrupt`
    (Spark's `_corrupt_record` is not null: the line's field count differs from the header's)."""

    values: dict[str, pa.Array]
    corrupt: pa.BooleanArray


def split_lines(data: bytes, key: str) -> Lines:
    """The lines of one upload; raises FileRejected when its bytes are not UTF-8."""
    text_type = pa.string() if len(data) < 2**31 else pa.large_string()
    has_cr = b"\r" in data
    # CRLF files are cut on CRLF (fast); if a piece still holds a CR or LF, the endings are mixed: cut again.
    lines = _cut_lines(data, b"\r\n" if has_cr else b"\n")
    try:
        lines = lines.cast(text_type)
    except pa.ArrowInvalid:
        bad = _first_bad_line(_cut_lines(data, None) if has_cr else lines)
        raise FileRejected(key, f"not valid UTF-8 (first bad bytes on line {bad})") from None
    if has_cr and pc.any(pc.match_substring_regex(lines, "[\r\n]")).as_py():
        lines = _cut_lines(data, None).cast(text_type)
    text = lines.slice(1)
    return Lines(text, pa.array(np.arange(2, len(text) + 2, dtype=np.int64)), _blank(text))


def _cut_lines(data: bytes, terminator: bytes | None) -> pa.Array:
    """The bytes cut into lines (binary) at `terminator`, or at any of "\\r\\n", "\\r" and "\\n" when None."""
    if not data:
        return pa.array([], pa.large_binary())
    whole = pa.Array.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int64)), pa.py_buffer(data)]
    )
    if terminator is None:
        lines = pc.split_pattern_regex(whole, b"\r\n|\r|\n").values
        ended = data.endswith((b"\n", b"\r"))
    else:
        lines = pc.split_pattern(whole, terminator).values
        ended = data.endswith(terminator)
    return lines.slice(0, len(lines) - 1) if ended else lines  # no empty line after a final terminator


def _first_bad_line(lines: pa.Array) -> int:
    """The number of the first line that is not UTF-8 (bisecting with Arrow's own check)."""
    good, bad = 0, len(lines)  # lines[:good] are UTF-8; the first bad line is before `bad`
    while bad - good > 1:
        middle = (good + bad) // 2
        try:
            lines.slice(good, middle - good).cast(pa.large_string())
            good = middle
        except pa.ArrowInvalid:
            bad = middle
    return good + 1


def _blank(text: pa.Array) -> pa.BooleanArray:
    """btrim(line, ' \\t') == '', checked only where a line is empty or starts with a space or a tab."""
    offsets = _offsets(text)
    starts = offsets[:-1]
    candidates = offsets[1:] == starts
    if text.buffers()[2] is not None and text.buffers()[2].size:
        chars = np.frombuffer(text.buffers()[2], np.uint8)
        first = chars[np.minimum(starts, len(chars) - 1)]
        candidates |= (first == ord(" ")) | (first == ord("\t"))
    candidates = np.flatnonzero(candidates)
    blank = np.zeros(len(text), bool)
    blank[candidates] = _matches(text.take(candidates), r"^[ \t]*$")
    return pa.array(blank)


class TooManyFields(ValueError):
    """`text[index]` has `count` fields, more than MAX_FIELDS (Spark's parser fails its job on such a line)."""

    def __init__(self, index: int, count: int) -> None:
        super().__init__(f"line {index} of the text has {count} fields, more than the {MAX_FIELDS} a line may have")
        self.index = index
        self.count = count


def parse_fields(text: pa.Array, field_count: int, positions: dict[str, int]) -> Parsed:
    """Spark's parse of each line (`from_csv` with transform.CSV_OPTIONS and `field_count` string fields): the
    REQUIRED_COLUMNS at their header positions and the corrupt mask. Raises TooManyFields for a line of more than
    MAX_FIELDS fields, on which Spark's job fails. Works in slices of lines, several at a time."""
    missing = [c for c in transform.REQUIRED_COLUMNS if c not in positions]
    if missing:
        raise ValueError(f"positions lack column(s): {', '.join(missing)}")
    slices = [text.slice(start, _SLICE_LINES) for start in range(0, len(text), _SLICE_LINES)] or [text]
    with ThreadPoolExecutor(min(len(slices), os.cpu_count() or 1, 4)) as pool:
        parts = list(pool.map(lambda part: _parse_slice(part, field_count, positions), slices))
    counts = np.concatenate([c for _, c in parts])
    if len(counts) and counts.max() > MAX_FIELDS:
        index = int(np.argmax(counts > MAX_FIELDS))
        raise TooManyFields(index, int(counts[index]))
    values = {c: pa.concat_arrays([v[c] for v, _ in parts]) for c in transform.REQUIRED_COLUMNS}
    return Parsed(values, pa.array(counts != field_count))


def _parse_slice(text: pa.Array, field_count: int, positions: dict[str, int]) -> tuple[dict[str, pa.Array], np.ndarray]:
    """parse_fields on a slice of lines: the values and each line's field count."""
    # Every line split on ",": exact where no field opens with '"' (univocity copies an unquoted field up to the
    # next "," whatever it holds, quotes included).
    pieces = pc.split_pattern(text, ",")
    offsets = _offsets(pieces)
    counts = np.diff(offsets)
    fields = pieces.values
    with_quote = np.flatnonzero(_matches(text, '"'))
    quoted = with_quote[_matches(text.take(with_quote), _OPENING_QUOTE)]
    q_values, q_counts = _parse_quoted(text.take(quoted), field_count, positions)
    split_counts = counts.copy()
    counts[quoted] = q_counts

    # One take per column from the split fields followed by the quoted lines' values.
    pool = fields
    if len(quoted):
        pool = pa.concat_arrays([fields, *[q_values[c].cast(fields.type) for c in transform.REQUIRED_COLUMNS]])
    index_type = np.int32 if len(pool) < 2**31 else np.int64
    values = {}
    for k, column in enumerate(transform.REQUIRED_COLUMNS):
        pos = positions[column]
        where = (offsets[:-1] + pos).astype(index_type)
        absent = split_counts <= pos
        where[absent] = 0
        where[quoted] = len(fields) + k * len(quoted) + np.arange(len(quoted), dtype=index_type)
        absent[quoted] = False
        values[column] = _empty_as_null(pool.take(pa.array(where, mask=absent)))
    return values, counts


def _empty_as_null(values: pa.Array) -> pa.Array:
    """Spark's string converter: an empty field is null (CSV_OPTIONS' nullValue and emptyValue are both "")."""
    if values.offset:
        values = pa.concat_arrays([values])
    offsets = _offsets(values)
    valid = (offsets[1:] > offsets[:-1]) & values.is_valid().to_numpy(zero_copy_only=False)
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(values.type, len(values), [validity, *values.buffers()[1:]])


def _offsets(arr: pa.Array) -> np.ndarray:
    """The offsets of a (large) string or list array, as numpy, zero-copy."""
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_list(arr.type)
    offsets = np.frombuffer(arr.buffers()[1], np.int64 if large else np.int32)
    return offsets[arr.offset : arr.offset + len(arr) + 1]


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(text, pattern).to_numpy(zero_copy_only=False)


def _parse_quoted(
    text: pa.Array, field_count: int, positions: dict[str, int]
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Lines with a field that opens with '"': their values and field counts. Well-formed lines of the header's
    field count go through Arrow's CSV reader; the others (malformed or of another count: rare) through Python."""
    n = len(text)
    counts = np.full(n, field_count, np.int64)
    if not n:
        return {c: pa.array([], pa.string()) for c in transform.REQUIRED_COLUMNS}, counts
    well_formed = np.flatnonzero(_matches(text, _WELL_FORMED))
    table = _read_csv(text.take(well_formed), field_count, positions)
    fast = well_formed[table.column("i").to_numpy()] if table else np.zeros(0, np.int64)
    slow = np.ones(n, bool)
    slow[fast] = False
    slow = np.flatnonzero(slow)
    rows = [_SparkCsvLine(line).fields() for line in text.take(slow).to_pylist()]
    counts[slow] = [len(r) for r in rows]
    values = {}
    for c in transform.REQUIRED_COLUMNS:
        pos = positions[c]
        values[c] = table.column(f"c{pos}").combine_chunks() if table else pa.array([], pa.string())
        if len(slow):  # rare: merge the Python-parsed lines back into line order
            order = np.empty(n, np.int64)
            order[np.concatenate([fast, slow])] = np.arange(n)
            slow_values = pa.array([r[pos] if pos < len(r) else None for r in rows], pa.string())
            values[c] = pa.concat_arrays([values[c], slow_values]).take(pa.array(order))
    return values, counts


def _read_csv(text: pa.Array, field_count: int, positions: dict[str, int]) -> pa.Table | None:
    """Well-formed CSV lines read by Arrow (raw strings, null for empty fields): `i` (the line's index in `text`) and
    the needed fields `c<position>` of the lines of `field_count` fields; Arrow skips the others."""
    if not len(text):
        return None
    # Each line prefixed with its index: rows Arrow skips are known, rows it keeps say where they go.
    numbered = pc.binary_join_element_wise(pc.cast(pa.array(np.arange(len(text))), pa.string()), text, ",")
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(text)], pa.int32()), numbered), "\n")[0]
    longest = int(np.diff(_offsets(numbered)).max())
    names = ["i", *[f"c{k}" for k in range(field_count)]]
    needed = sorted({f"c{k}" for k in positions.values()})
    table = pa_csv.read_csv(
        pa.BufferReader(joined.as_buffer()),
        # A line must fit in a block (Arrow does not carry a line over to the next block).
        read_options=pa_csv.ReadOptions(column_names=names, block_size=max(1 << 20, 2 * longest)),
        parse_options=pa_csv.ParseOptions(
            quote_char='"',
            double_quote=True,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=lambda row: "skip",
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={"i": pa.int64(), **{name: pa.string() for name in names[1:]}},
            include_columns=["i", *needed],
            null_values=[""],  # Spark's nullValue and emptyValue: "" and a quoted "" are both null
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return table


def reason(text: pa.Array, field_count: int) -> pa.Array:
    """transform.rejected_rows' reason for each (corrupt) line: its field count as `transform.count_fields` counts it
    (quoted runs removed, then commas + 1), or unbalanced quotes when that count is the header's."""
    found = pc.add(pc.count_substring(pc.replace_substring_regex(text, r'"([^"]|"")*"?', ""), ","), 1)
    expected = pc.binary_join_element_wise(
        f"expected {field_count} fields as in the header, found ", pc.cast(found, pa.string()), ""
    )
    return pc.if_else(pc.not_equal(found, field_count), expected, "malformed CSV line (unbalanced quotes)")


_QUOTE, _DELIMITER, _NEWLINE, _NUL = '"', ",", "\n", "\0"


class _EndOfLine(Exception):
    """univocity's EOFException: the line has no more characters."""


class _SparkCsvLine:
    """One line as Spark's from_csv tokenizes it: univocity 2.9.1's CsvParser.parseLine with Spark's settings
    (quote and escape '"', no escape-of-escape, unescaped quotes STOP_AT_DELIMITER, no whitespace trimming, "" for
    null and empty values, which Spark's string converter turns into null).

    Transcribed method by method (parseSingleDelimiterRecord, getQuotedString, parseQuotedValue, consumeValueOnEOF,
    handleEOF) so that every odd case keeps univocity's answer: text after a closing quote keeps both quotes
    ('"b"c' -> '"b"c'), blanks (any char <= ' ', NUL included) between a closing quote and "," are dropped, a NUL
    inside quotes is dropped (except on the fast path for a clean quoted field followed by ","), an unclosed quote
    runs to the end of the line. Java chars are UTF-16 code units, so lines with characters beyond U+FFFF are
    parsed as surrogate pairs (it matters where the line ends right after one).
    """

    def __init__(self, line: str) -> None:
        self.astral = any(ord(ch) > 0xFFFF for ch in line)
        if self.astral:
            line = "".join(map(chr, array.array("H", line.encode("utf-16-le"))))
        self.line = line
        self.i = 0
        self.ch = _NUL
        self.prev = _NUL
        self.unescaped = False
        self.values: list[str | None] = []
        self.appender: list[str] = []

    def fields(self) -> list[str | None]:
        try:
            self.ch = self._next()
            self._parse_record()
        except _EndOfLine:
            self._handle_eof()
        if self.astral:
            return [v if v is None else v.encode("utf-16-le", "surrogatepass").decode("utf-16-le") for v in self.values]
        return self.values

    def _next(self) -> str:
        if self.i >= len(self.line):
            raise _EndOfLine
        self.i += 1
        return self.line[self.i - 1]

    def _value_parsed(self) -> None:
        self.values.append("".join(self.appender) or None)
        self.appender = []

    def _append_until(self, ch: str, stop1: str, stop2: str) -> str:
        while ch != stop1 and ch != stop2:
            self.appender.append(ch)
            ch = self._next()
        return ch

    def _parse_record(self) -> None:
        while self.ch != _NEWLINE:
            if self.ch == _DELIMITER:
                self.values.append(None)
            else:
                self.unescaped = False
                self.prev = _NUL
                if self.ch == _QUOTE:
                    value = self._quoted_fast() if not self.appender else None
                    if value is not None:
                        self.values.append(value or None)
                        try:
                            self.ch = self._next()
                            if self.ch == _DELIMITER:
                                try:
                                    self.ch = self._next()
                                except _EndOfLine:
                                    self.values.append(None)
                                    return
                        except _EndOfLine:
                            return
                        continue
                    self._parse_quoted_value()
                else:
                    self.ch = self._append_until(self.ch, _DELIMITER, _NEWLINE)
                self._value_parsed()
            if self.ch != _NEWLINE:
                self.ch = self._next()

    def _quoted_fast(self) -> str | None:
        """getQuotedString: a quoted run without quotes inside, closed by '"' then ","; None when it is not one."""
        line, i = self.line, self.i
        while True:
            if i >= len(line):
                return None
            if line[i] == _QUOTE:
                if line[i - 1] == _QUOTE or i + 1 >= len(line) or line[i + 1] not in (_DELIMITER, _NEWLINE):
                    return None
                break
            i += 1
        value = line[self.i : i]
        self.i = i + 1
        return value

    def _parse_quoted_value(self) -> None:
        if self.prev != _NUL:  # unescaped quote seen: the rest up to the delimiter, opening quote kept
            self.appender.insert(0, _QUOTE)
            self.ch = self._next()
            self.ch = self._append_until(self.ch, _DELIMITER, _NEWLINE)
            return
        self.ch = self._next()
        while not (self.prev == _QUOTE and (self.ch <= " " or self.ch == _DELIMITER)):
            if self.ch != _QUOTE:
                if self.prev == _QUOTE:  # text right after a closing quote
                    self.unescaped = True
                    self.appender += [_QUOTE, self.ch]
                    self.prev = self.ch
                    self._parse_quoted_value()
                    return
                self.ch = self._append_until(self.ch, _QUOTE, _NUL)
                self.prev = self.ch
                self.ch = self._next()
            else:
                if self.prev == _QUOTE:  # "" inside quotes
                    self.appender.append(_QUOTE)
                    self.ch = _NUL
                self.prev = self.ch
                self.ch = self._next()
                if self.unescaped and self.ch == _DELIMITER:
                    return
        if self.ch != _DELIMITER and self.ch <= " ":  # blanks after the closing quote
            blanks = []
            while self.ch <= " ":
                blanks.append(self.ch)
                self.ch = self._next()
            if self.ch != _DELIMITER:
                self.appender += [_QUOTE, *blanks, self.ch]
                self.prev = self.ch
                self._parse_quoted_value()

    def _handle_eof(self) -> None:
        consume = False
        if self.ch == _QUOTE and self.prev == _QUOTE:
            consume = True
        else:
            if self.ch == _QUOTE and not self.unescaped:
                self.appender.append(_QUOTE)
            consume = self.prev != _NUL and self.ch != _DELIMITER
        if self.appender or consume:
            self._value_parsed()
        else:
            self.values.append(None)
