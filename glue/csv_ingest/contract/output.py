"""The job's output contract (CONTRACT.md states it; tests/test_output_contract.py pins it): what a processed,
rejected and stats file holds and how each value is written. Versioned by OUTPUT_FORMAT.

CSV: UTF-8, no BOM, RFC 4180 with minimal quoting (a cell is quoted only when it holds ',', '"', CR or LF; '"' is
doubled inside), "\\n" line ends, a header row; an empty cell is a missing value. Cells that a spreadsheet would run
as a formula are neutralised (`neutralise`). Parquet: the same rows typed, values as they are (not neutralised).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

OUTPUT_FORMAT = "csv-ingest-output/2"

PROCESSED_COLUMNS = (
    "id",
    "name",
    "email",
    "email_valid",
    "date",
    "amount",
    "amount_category",
    "status",
    "running_total_by_status",
    "data_quality_issues",
    "processing_date",
    "source_file",
)
REJECTED_COLUMNS = ("source_file", "line_number", "reason", "raw_line")

# OWASP's rule for CSV injection: a cell starting with one of these is a formula to a spreadsheet...
FORMULA_TRIGGERS = "=+-@\t\r"
# ...unless it is a plain number (-12.5, +3, .5), which a spreadsheet reads as a number.
PLAIN_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)\z"
# The processed CSV's processing_date: what Athena's and Hive's timestamp type parse (UTC).
TIMESTAMP_TEXT = "%Y-%m-%d %H:%M:%S"
AMOUNT_TYPE = pa.decimal128(24, 9)  # up to 15 integer digits, 9 decimals
TOTAL_TYPE = pa.decimal128(38, 9)
PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("email_valid", pa.bool_()),
        ("date", pa.date32()),
        ("amount", AMOUNT_TYPE),
        ("amount_category", pa.string()),
        ("status", pa.string()),
        ("running_total_by_status", TOTAL_TYPE),
        ("data_quality_issues", pa.string()),
        ("processing_date", pa.timestamp("ms")),
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
    ]
)
CHUNK_ROWS = 100_000
_QUOTE_NEEDED = r'[,"\r\n]'
_QUOTE_BYTES = ',"\r\n'


def timestamp_text(iso: str) -> str:
    """'2026-04-01T10:00:30.000Z' -> '2026-04-01 10:00:30.000' (UTC, milliseconds)."""
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime(TIMESTAMP_TEXT) + f".{moment.microsecond // 1000:03d}"


def neutralise(values: pa.Array) -> pa.Array:
    """A cell a spreadsheet would run as a formula (it starts with = + - @, tab or CR and is not a plain number)
    gets a leading "'": '=1+1 -> "'=1+1", "-2+3" -> "'-2+3", "-12.5" stays."""
    if not len(values):
        return values
    if not _first_bytes_among(values, FORMULA_TRIGGERS):  # most columns: no cell starts with a trigger
        return values
    risky = pc.fill_null(pc.match_substring_regex(values, f"^[{_regex_class(FORMULA_TRIGGERS)}]"), False)
    if not pc.any(risky).as_py():
        return values
    number = pc.fill_null(pc.match_substring_regex(values, PLAIN_NUMBER), False)
    formula = pc.and_(risky, pc.invert(number))
    text = values.type  # string or large_string: the joined pieces must be of the column's own type
    return pc.if_else(formula, pc.binary_join_element_wise(pa.scalar("'", text), values, pa.scalar("", text)), values)


def string_data(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets of a (large) string array and its data bytes as numpy, zero-copy."""
    large = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64 if large else np.int32)
    offsets = offsets[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets, data


def _first_bytes_among(values: pa.Array, chars: str) -> bool:
    """Whether some non-empty value starts with one of the ASCII `chars` (one gather of first bytes, no regex)."""
    offsets, data = string_data(values)
    starts = offsets[:-1][np.diff(offsets) > 0]
    return bool(np.isin(data[starts], np.frombuffer(chars.encode("ascii"), np.uint8)).any())


def _holds_any_byte(values: pa.Array, chars: str) -> bool:
    """Whether some value holds one of the ASCII `chars` (checked on the values' bytes at once, no regex)."""
    offsets, data = string_data(values)
    found = data[offsets[0] : offsets[-1]]
    found = found[found <= max(chars.encode("ascii"))]  # the rare low bytes only (',' '"' CR LF are below '-')
    return bool(np.isin(found, np.frombuffer(chars.encode("ascii"), np.uint8)).any())


def _regex_class(chars: str) -> str:
    return "".join("\\" + c if c in "\\^-]" else c for c in chars).replace("\t", "\\t").replace("\r", "\\r")


def processed_text(table: pa.Table) -> pa.Table:
    """The processed rows as the CSV's cells (PROCESSED_COLUMNS, strings): booleans true/false, dates yyyy-MM-dd,
    amounts and totals as plain decimals (already text), processing_date as TIMESTAMP_TEXT, strings neutralised."""
    cells = {}
    for name in PROCESSED_COLUMNS:
        column = table.column(name).combine_chunks()
        if pa.types.is_boolean(column.type) or pa.types.is_date(column.type):
            column = pc.cast(column, pa.string())
        elif name == "processing_date":  # one value per upload (the run's timestamp), ISO-8601 in the rows
            column = _by_value(column, lambda d: pa.array([timestamp_text(v) if v else None for v in d.to_pylist()]))
        elif name == "source_file":  # one value per upload (its key)
            column = _by_value(column, neutralise)
        elif name not in ("amount", "running_total_by_status"):
            column = neutralise(column)
        cells[name] = column
    return pa.table(cells)


def _by_value(column: pa.Array, text: Callable[[pa.Array], pa.Array]) -> pa.DictionaryArray:
    """A column of few distinct values (one per upload) as their cells' text, dictionary-encoded: `text` runs on the
    distinct values only, and csv_lines writes a column of one value once per line, not once per row."""
    distinct = pc.unique(column)
    if len(distinct) == 1 and not column.null_count:
        indices = pa.array(np.zeros(len(column), np.int32))
    else:
        indices = pc.cast(pc.index_in(column, value_set=distinct), pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pc.cast(text(distinct), pa.string()))


def rejected_text(table: pa.Table) -> pa.Table:
    """The rejected rows as the CSV's cells: line numbers in decimal, strings neutralised."""
    return pa.table(
        {
            name: pc.cast(table.column(name), pa.string())
            if name == "line_number"
            else neutralise(table.column(name).combine_chunks())
            for name in REJECTED_COLUMNS
        }
    )


def _cell(values: pa.Array) -> pa.Array:
    """RFC 4180 minimal quoting: quoted (with '"' doubled) only when holding ',', '"', CR or LF; null -> empty."""
    text = values.type  # string or large_string: fills and joined pieces must be of the column's own type
    if values.null_count:
        values = pc.fill_null(values, pa.scalar("", text))
    if not _holds_any_byte(values, _QUOTE_BYTES):  # most columns: no cell needs quoting
        return values
    needs = pc.fill_null(pc.match_substring_regex(values, _QUOTE_NEEDED), False)
    if not pc.any(needs).as_py():
        return values
    quote, nothing = pa.scalar('"', text), pa.scalar("", text)
    quoted = pc.binary_join_element_wise(quote, pc.replace_substring(values, '"', '""'), quote, nothing)
    return pc.if_else(needs, quoted, values)


def csv_lines(table: pa.Table) -> pa.Array:
    """`table` (string columns, already the cells' text; or dictionary-encoded strings) as CSV rows: one string per
    row, ending with its "\n" (so the rows of any slice, written as their string data, are that slice of the file:
    no copy to join them). A column holding one value in every row is made into its cell once and joined as is."""
    cells = [_cells_of(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    text = next((c.type for c in cells if isinstance(c, pa.Array)), pa.string())
    if isinstance(cells[-1], pa.Scalar):
        cells[-1] = pa.scalar(cells[-1].as_py() + "\n", text)
    else:  # the last cell only
        cells[-1] = pc.binary_join_element_wise(cells[-1], pa.scalar("\n", text), pa.scalar("", text))
    cells = [pa.scalar(c.as_py(), text) if isinstance(c, pa.Scalar) else c for c in cells]
    if len(cells) == 1:
        return cells[0] if isinstance(cells[0], pa.Array) else pa.array([cells[0].as_py()] * table.num_rows, text)
    return pc.binary_join_element_wise(*cells, pa.scalar(",", text))


def _cells_of(values: pa.Array) -> pa.Array | pa.Scalar:
    """_cell of a column; a dictionary-encoded column of one value (no missing one) as that value's cell, once."""
    if not pa.types.is_dictionary(values.type):
        return _cell(values)
    if len(values.dictionary) == 1 and not values.null_count and len(values):
        return _cell(values.dictionary)[0]
    return _cell(pc.cast(values, values.type.value_type))


def write_csv_lines(columns: Sequence[str], lines: pa.Array, sink: BinaryIO) -> None:
    """A CSV file: the header row of `columns`, then `lines` (csv_lines)."""
    _write_header(columns, sink)
    _write_lines(lines, sink)


def write_csv(table: pa.Table, sink: BinaryIO, chunk_rows: int = CHUNK_ROWS) -> None:
    """`table` (string columns, already the cells' text) as CSV: header row, then the rows, "\n" after each."""
    _write_header(table.column_names, sink)
    for start in range(0, table.num_rows, chunk_rows):
        _write_lines(csv_lines(table.slice(start, chunk_rows)), sink)


def write_csv_of(
    table: pa.Table,
    cells: Callable[[pa.Table], pa.Table],
    sink: BinaryIO,
    threads: int = 1,
    chunk_rows: int | None = None,
) -> None:
    """`cells(table)` (e.g. processed_text) written as write_csv writes it, made chunk by chunk (the cells are
    row-local): with `threads` > 1 the chunks are made on that many threads (Arrow's kernels run without the GIL)
    and written in order, at most `threads` + 1 chunks held at once."""
    _write_header(cells(table.slice(0, 0)).column_names, sink)
    chunk_rows = chunk_rows or CHUNK_ROWS

    def chunk(start: int) -> pa.Array:
        return csv_lines(cells(table.slice(start, chunk_rows)))

    starts = range(0, table.num_rows, chunk_rows)
    if threads <= 1 or len(starts) <= 1:
        for start in starts:
            _write_lines(chunk(start), sink)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for start in starts:
            pending.append(pool.submit(chunk, start))
            if len(pending) > threads:
                _write_lines(pending.popleft().result(), sink)
        while pending:
            _write_lines(pending.popleft().result(), sink)


def _write_header(columns: Sequence[str], sink: BinaryIO) -> None:
    sink.write((",".join(_cell(pa.array(list(columns), pa.string())).to_pylist()) + "\n").encode())


def _write_lines(lines: pa.Array, sink: BinaryIO) -> None:
    """csv_lines (or a slice of them) as the file's bytes: their string data, as it is."""
    if not len(lines):
        return
    offsets, data = string_data(lines)
    sink.write(memoryview(data[offsets[0] : offsets[-1]]))


def csv_bytes(table: pa.Table) -> bytes:
    import io

    sink = io.BytesIO()
    write_csv(table, sink)
    return sink.getvalue()


# Columns of the processed rows that hold a column's typed values beside its text (the rules make them from the exact
# integers; without them the text is cast).
TYPED_VALUES = {"amount": "amount_value", "running_total_by_status": "running_total_value"}


def parquet_table(table: pa.Table, processing_date: str) -> pa.Table:
    """The processed rows typed as PARQUET_SCHEMA (values as they are: Parquet is read by query engines). Amounts and
    totals from their TYPED_VALUES columns when the table has them, else read from their text."""
    n = table.num_rows
    moment = datetime.fromisoformat(processing_date)
    millis = int(moment.timestamp() * 1000)
    columns = {}
    for f in PARQUET_SCHEMA:
        if f.name == "processing_date":
            columns[f.name] = pa.array(np.full(n, millis, np.int64)).cast(pa.timestamp("ms"))
        else:
            name = TYPED_VALUES.get(f.name, f.name)
            columns[f.name] = pc.cast(table.column(name if name in table.column_names else f.name), f.type)
    return pa.table(columns, schema=PARQUET_SCHEMA)


# Columns whose values are mostly distinct (ids, emails, amounts, totals, line numbers) are written plainly: a
# dictionary is built for them only to be dropped when it outgrows its page (CPU spent for nothing).
PARQUET_PLAIN_COLUMNS = ("id", "email", "amount", "running_total_by_status", "line_number")


def write_parquet(table: pa.Table, sink: BinaryIO) -> None:
    dictionary = [name for name in table.column_names if name not in PARQUET_PLAIN_COLUMNS]
    pq.write_table(table, sink, compression="snappy", use_dictionary=dictionary)
