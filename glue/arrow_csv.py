"""CSV output of the Arrow engine, byte for byte what Spark's CSV writer writes with ingest.CSV_WRITE_OPTIONS.

Spark writes through univocity with these options; what it does, found by writing every character and type from
Spark (tests/test_arrow_csv.py holds it to that):
- strings: leading and trailing chars <= ' ' (space, tab, CR, LF, NUL and the other controls) are dropped; a value
  is quoted when what follows its leading blanks holds ',', '"', CR or LF (so "a\\n" is written "a" quoted, and
  "\\na" is written a unquoted), or when it is in the first column and starts with '#' (univocity's comment char);
  inside quotes '"' is doubled, backslashes are left as they are. Null and "" are both written as nothing. Header
  names are written the same way.
- a line that comes out empty is not written at all: in a one-column file, a null or blank value drops its row
  (and a blank header drops the header line).
- booleans true/false; integers in decimal; dates yyyy-MM-dd with the proleptic year, "+" before years past 9999;
  doubles as Java 17's Double.toString (`java_double_text`).
"""

from __future__ import annotations

import io
import math
import struct
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

CHUNK_ROWS = 100_000
# What univocity trims from both ends of a value: every char <= ' '.
_BLANK = "".join(map(chr, range(33)))
_QUOTE_TRIGGERS = (b",", b'"', b"\n", b"\r")
# Cells already rendered and none needing quotes: Arrow's writer only has to join them (it refuses quotes).
_JOIN_ONLY = pacsv.WriteOptions(include_header=False, quoting_style="none")
_LAST_FOUR_DIGIT_DAY = 2_932_896  # 9999-12-31 as days since 1970-01-01
_BLOCK_ROWS = 65_536
_LOWEST_POWER = -323
_POWERS_OF_TEN = np.array([float(f"1e{k}") for k in range(_LOWEST_POWER, 309)])  # each the double nearest 10^k
_EXPONENT_SUFFIXES = pa.array([f"{pad}E{k}" for pad in ("", "0") for k in range(_LOWEST_POWER, 309)])


def java_double_text(values: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """float64 -> the text of Java 17's Double.toString (what Spark's CSV writer writes); null stays null.

    The shortest round-trip digits (pyarrow's cast) laid out as Java does: plain for 1e-3 <= |x| < 1e7 with at
    least one digit after the point, else d.dddE±n. Java 17's FloatingDecimal gives other digits only for
    subnormals, some exact powers of two and some |x| >= 2^54 (2e23 -> "1.9999999999999998E23"); those rows
    (fenced wider: subnormal, any power of two, |x| >= 2^50) go through `java_double_text_scalar`.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_float64(values.type):
        raise TypeError(f"java_double_text takes float64, not {values.type}")
    with np.errstate(invalid="ignore"):  # np.floor of a NaN with a payload
        if len(values) <= _BLOCK_ROWS:
            return _java_text_block(values)
        # Blocks small enough for the intermediate arrays to stay in cache: ~1.7x faster than one pass.
        blocks = [_java_text_block(values.slice(i, _BLOCK_ROWS)) for i in range(0, len(values), _BLOCK_ROWS)]
    return pa.concat_arrays(blocks)


def _java_text_block(values: pa.Array) -> pa.StringArray:
    """`java_double_text` of one block: pyarrow's text, and in place of it where Java's layout differs, the fix."""
    x = np.asarray(pc.fill_null(values, 0.0), dtype=np.float64)
    valid = np.asarray(values.is_valid()) if values.null_count else np.ones(len(x), dtype=bool)
    magnitude = np.abs(x)
    finite = np.isfinite(x)
    bits = x.view(np.int64)
    irregular = (((bits >> 52) & 0x7FF) == 0) | ((bits & 0xFFFFFFFFFFFFF) == 0) | (magnitude >= 2.0**50)
    rare = valid & finite & (magnitude != 0) & irregular
    scientific = valid & finite & ~rare & ((magnitude < 1e-3) & (magnitude != 0) | (magnitude >= 1e7))

    text = pc.cast(values, pa.string())  # "150", "1234.5", "-0", "1.5e-7", "nan", "inf"
    whole = valid & finite & ~scientific & ~rare & (np.floor(x) == x)  # "150", "-0": no point yet
    special = valid & ~finite
    groups = [
        (whole, lambda: pc.binary_join_element_wise(text.filter(pa.array(whole)), ".0", "")),
        (scientific, lambda: _scientific_text(text.filter(pa.array(scientific)), x[scientific])),
        (special, lambda: pa.array([_java_special(v) for v in x[special]], pa.string())),
        (rare, lambda: pa.array([java_double_text_scalar(float(v)) for v in x[rare]], pa.string())),
    ]
    return _patch(text, [(mask, make()) for mask, make in groups if mask.any()])


def write_csv(table: pa.Table, sink: BinaryIO, chunk_rows: int = CHUNK_ROWS) -> None:
    """Writes `table` (header + rows) to `sink` as Spark's CSV writer writes a DataFrame of the same columns.

    Column types: string, bool, int8..int64, date32, float64. Rows are rendered `chunk_rows` at a time.
    """
    if table.num_columns == 0:
        raise ValueError("cannot write a CSV file without columns")
    for field in table.schema:
        _check_type(field)
    header = ",".join(_string_value(name, i == 0) for i, name in enumerate(table.column_names))
    if header or table.num_columns > 1:
        sink.write(header.encode("utf-8") + b"\n")
    for start in range(0, table.num_rows, chunk_rows):
        part = table.slice(start, chunk_rows)
        rendered = [_cells(part.column(i), i == 0) for i in range(part.num_columns)]
        cells = [text for text, _ in rendered]
        # string offsets are int32: join large text (or large_string columns) as large_string
        if sum(c.nbytes for c in cells) > 2**30 or any(c.type == pa.large_string() for c in cells):
            cells = [c.cast(pa.large_string()) for c in cells]
        if len(cells) == 1:  # univocity skips a line with nothing on it
            cells[0] = cells[0].filter(pc.not_equal(pc.binary_length(cells[0]), 0))
        if any(quoted for _, quoted in rendered):
            text = cells[0].type
            cells[-1] = pc.binary_join_element_wise(cells[-1], pa.scalar("\n", text), pa.scalar("", text))
            _write_text(pc.binary_join_element_wise(*cells, pa.scalar(",", text)), sink)
        else:  # no cell holds ',', '"', CR or LF: Arrow's own writer joins them fastest
            out = pa.BufferOutputStream()
            pacsv.write_csv(pa.Table.from_arrays(cells, names=part.column_names), out, _JOIN_ONLY)
            sink.write(memoryview(out.getvalue()))


def csv_bytes(table: pa.Table) -> bytes:
    """The whole CSV file `write_csv` writes, as bytes."""
    sink = io.BytesIO()
    write_csv(table, sink)
    return sink.getvalue()


def _check_type(field: pa.Field) -> None:
    t = field.type
    if not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_boolean(t)
        or pa.types.is_signed_integer(t)
        or pa.types.is_date32(t)
        or pa.types.is_float64(t)
    ):
        raise TypeError(f"column {field.name!r}: no Spark CSV text for {t}")


def _cells(column: pa.ChunkedArray, first: bool) -> tuple[pa.Array, bool]:
    """One column's values as written (nulls as ""), and whether any of them is quoted."""
    values = column.combine_chunks()
    t = values.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _string_cells(values, first)
    if pa.types.is_boolean(t):
        text = pc.if_else(values, "true", "false")
    elif pa.types.is_date32(t):
        text = _date_cells(values)
    elif pa.types.is_float64(t):
        text = java_double_text(values)
    else:
        text = pc.cast(values, pa.string())
    return pc.fill_null(text, ""), False


def _string_cells(values: pa.Array, first: bool) -> tuple[pa.Array, bool]:
    """Strings as univocity writes them: trimmed of chars <= ' ', quoted where needed (see the module docstring).

    The column's bytes are scanned once: most columns need no trimming and few values need quotes, and the Arrow
    kernels then only run where they change something.
    """
    values = pc.fill_null(values, "")
    offsets, data = _offsets_and_data(values)
    starts, ends = offsets[:-1], offsets[1:]
    filled = ends > starts
    padded = bool((data[starts[filled]] <= 32).any() or (data[ends[filled] - 1] <= 32).any())
    flagged = np.zeros(len(values), dtype=bool)
    raw = data.tobytes()
    if any(trigger in raw for trigger in _QUOTE_TRIGGERS):  # memchr: cheap when absent
        hits = np.flatnonzero((data == 44) | (data == 34) | (data == 10) | (data == 13))
        flagged[np.searchsorted(ends, hits, side="right")] = True
        if padded:  # a trigger inside the leading blanks ("\na") quotes nothing: look again past them
            rows = np.flatnonzero(flagged)
            rest = pc.ascii_ltrim(values.take(pa.array(rows)), _BLANK)
            flagged[rows] = np.asarray(pc.match_substring_regex(rest, r'[,"\r\n]'))
    if first:  # univocity's comment char, tested on the untrimmed value
        flagged[filled] |= data[starts[filled]] == ord("#")
    body = pc.ascii_rtrim(pc.ascii_ltrim(values, _BLANK), _BLANK) if padded else values
    if not flagged.any():
        return body, False
    inner = pc.replace_substring(body.filter(pa.array(flagged)), '"', '""')
    quote, nothing = pa.scalar('"', body.type), pa.scalar("", body.type)
    return _patch(body, [(flagged, pc.binary_join_element_wise(quote, inner, quote, nothing))]), True


def _offsets_and_data(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's value offsets (from 0) and the bytes they index, as numpy views."""
    offsets_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=offsets_type)[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, dtype=np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _string_value(value: str, first: bool) -> str:
    """One string as written (the header's names)."""
    start = len(value) - len(value.lstrip(_BLANK))
    rest = value[start:]
    body = rest.rstrip(_BLANK)
    if any(c in rest for c in ',"\r\n') or (first and value.startswith("#")):
        return '"' + body.replace('"', '""') + '"'
    return body


def _date_cells(values: pa.Array) -> pa.Array:
    text = pc.cast(values, pa.string())  # ISO, proleptic, "-0001-..." for negative years, as Spark
    days = np.asarray(pc.fill_null(values.cast(pa.int32()), 0))
    past = days > _LAST_FOUR_DIGIT_DAY
    if past.any():  # Spark's yyyy becomes uuuu: a sign before a year of more than four digits
        text = _patch(text, [(past, pc.binary_join_element_wise("+", text.filter(pa.array(past)), ""))])
    return text


def _write_text(lines: pa.Array, sink: BinaryIO) -> None:
    """Writes the values of a null-free string array back to back, straight from its data buffer."""
    if len(lines):
        sink.write(memoryview(_offsets_and_data(lines)[1]))


def _patch(text: pa.Array, groups: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """`text` with the rows of each group's mask replaced by the group's values (in row order)."""
    if len(groups) > 1:  # one replacement array in row order, so that `text` is copied once
        where = np.zeros(len(text), dtype=np.int64)
        start = 0
        for mask, replacement in groups:
            where[mask] = np.arange(start, start + len(replacement))
            start += len(replacement)
        mask = np.logical_or.reduce([m for m, _ in groups])
        replacements = pa.concat_arrays([r.cast(text.type) for _, r in groups]).take(pa.array(where[mask]))
        groups = [(mask, replacements)]
    for mask, replacement in groups:
        text = pc.replace_with_mask(text, pa.array(mask), replacement.cast(text.type))
    return text


def _scientific_text(text: pa.Array, x: np.ndarray) -> pa.Array:
    """Java's d.dddE±n from pyarrow's text of finite, regular doubles outside 1e-3 <= |x| < 1e7.

    pyarrow writes "12345678" and "123456789.12345679" for 1e7 <= |x| < 1e10, "0.000123" for 1e-6 <= |x| < 1e-3
    and "1.5e-7", "5e-7", "1.2345e+10", "1e+15" outside those (one digit before the point).
    """
    magnitude = np.abs(x)
    negative = x < 0
    if negative.any():
        text = pc.ascii_ltrim(text, "-")
    exponential = (magnitude < 1e-6) | (magnitude >= 1e10)
    positional = ~exponential
    groups = []
    if exponential.any():
        short = pc.replace_substring(text.filter(pa.array(exponential)), "e+", "e")
        pointed = pc.match_substring(short, ".")
        body = pc.if_else(pointed, pc.replace_substring(short, "e", "E"), pc.replace_substring(short, "e", ".0E"))
        groups.append((exponential, _signed(body, negative[exponential])))
    if positional.any():
        plain = text.filter(pa.array(positional)) if exponential.any() else text
        size = magnitude[positional]
        digits = pc.replace_substring(plain, ".", "", max_replacements=1)
        small = size < 1e-3
        whole = np.floor(size) == size
        if small.any():
            digits = pc.ascii_ltrim(digits, "0")  # 0.000123
        if whole.any():
            digits = pc.ascii_rtrim(digits, "0")  # 12340000
        # The decade of the shortest digits is the double's own: no double below 10^k has digits at or above it.
        exponent = np.searchsorted(_POWERS_OF_TEN, size, side="right") + _LOWEST_POWER - 1
        suffix = exponent - _LOWEST_POWER  # index of "E<exponent>" in _EXPONENT_SUFFIXES
        if small.any() or whole.any():  # one digit only ("1", "5"): Java writes "1.0E7"
            suffix[np.asarray(pc.binary_length(digits)) == 1] += len(_EXPONENT_SUFFIXES) // 2
        suffixes = pa.DictionaryArray.from_arrays(pa.array(suffix.astype(np.int16)), _EXPONENT_SUFFIXES)
        body = pc.binary_join_element_wise(pc.binary_replace_slice(digits, 1, 1, "."), suffixes.cast(pa.string()), "")
        groups.append((positional, _signed(body, negative[positional])))
    return groups[0][1] if len(groups) == 1 else _patch(text, groups)


def _signed(text: pa.Array, negative: np.ndarray) -> pa.Array:
    if not negative.any():
        return text
    return pc.binary_join_element_wise(pc.if_else(pa.array(negative), "-", ""), text, "")


def _java_special(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


# --- Java 17's Double.toString for the rows that do not get the shortest digits ------------------------------------
# Written from the behaviour of JDK 17's FloatingDecimal (JDK 19 replaced it with a shortest algorithm) and held to
# the JVM by tests/test_arrow_csv.py: an integer below 2^63 is printed from its own digits, its lowest ones rounded
# off (half up) past the double's precision; any other value gets Steele & White's free-format digits with Java's
# choices: a margin of half an ulp on both sides (a quarter when the mantissa is a single bit), at least two digits
# in E-form, ties to the even digit; when Java judges the scaled numbers small enough it works in 32- or 64-bit
# integers, with strict bounds and wrap-around (values in [2^84, 2^85) do overflow), and else in big integers, where
# the upper bound is inclusive.


def java_double_text_scalar(x: float) -> str:
    """Double.toString of one value as Java 17 writes it (slow; `java_double_text` uses it for rare rows)."""
    if not math.isfinite(x):
        return _java_special(x)
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    digits, point = _java_digits(abs(x))
    return ("-" if x < 0 else "") + _java_layout(digits, point)


def _java_layout(digits: str, point: int) -> str:
    """0.d1d2... x 10^point as Double.toString lays it out."""
    if 0 < point < 8:
        if len(digits) <= point:
            return digits + "0" * (point - len(digits)) + ".0"
        return digits[:point] + "." + digits[point:]
    if -3 < point <= 0:
        return "0." + "0" * -point + digits
    return f"{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def _java_digits(x: float) -> tuple[str, int]:
    """x > 0 as Java 17's digits and point: x ~ 0.d1d2... x 10^point."""
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    biased = bits >> 52
    mantissa = (bits & ((1 << 52) - 1)) | ((1 << 52) if biased else 0)
    exponent = max(biased, 1) - 1075  # x = mantissa * 2^exponent
    top = exponent + mantissa.bit_length() - 1  # 2^top <= x < 2^(top + 1)
    precision = 53 if biased else mantissa.bit_length()
    zeros = (mantissa & -mantissa).bit_length() - 1
    if exponent + zeros >= 0 and top <= 62:
        return _integer_digits(int(x), top - precision - 1)
    odd, odd_bits = mantissa >> zeros, mantissa.bit_length() - zeros
    # Java's estimate of floor(log10(x)); one too high just below some powers of ten, which shows in a few outputs.
    fraction = math.ldexp(mantissa, 1 - mantissa.bit_length())  # 1 <= fraction < 2
    decade = math.floor((fraction - 1.5) * 0.289529654 + 0.176091259 + top * 0.301029995663981)
    return _free_format_digits(odd, odd_bits, top, precision, decade)


def _integer_digits(value: int, excess_bits: int) -> tuple[str, int]:
    """An integer's digits, less the ones a double of this size cannot hold (as many as 2^excess_bits has, less 1)."""
    dropped = len(str(1 << excess_bits)) - 1 if excess_bits > 1 else 0
    if dropped:
        value, rest = divmod(value, 10**dropped)
        value += rest >= 10**dropped // 2
    text = str(value)
    return text.rstrip("0"), len(text) + dropped


def _free_format_digits(odd: int, odd_bits: int, top: int, precision: int, decade: int) -> tuple[str, int]:
    """Digits of odd * 2^(top - odd_bits + 1) / 10^decade, one at a time, until they pin the double down.

    `value`, `margin` and `ten` are the remainder, the margin and 10 in units of `scale`, with Java's powers of two:
    its 64-bit overflow and its strict/inclusive bounds depend on them.
    """
    value_exp2 = top - odd_bits + 1 - decade
    margin_exp2 = top - precision - (odd_bits == 1) - decade
    floor2 = min(value_exp2, 0, margin_exp2)
    five_value, five_scale = max(0, -decade), max(0, decade)
    value = (odd * 5**five_value) << (value_exp2 - floor2)
    scale = 5**five_scale << -floor2
    margin = 5**five_value << (margin_exp2 - floor2)
    value_bits = odd_bits + value_exp2 - floor2 + _bits_of_five(five_value)
    ten_bits = 1 - floor2 + _bits_of_five(five_scale + 1)
    width = 0 if max(value_bits, ten_bits) >= 64 else (32 if max(value_bits, ten_bits) < 32 else 64)

    def fixed(n: int) -> int:  # Java's int/long arithmetic (none for big integers)
        if not width:
            return n
        half = 1 << (width - 1)
        return (n + half) % (2 * half) - half

    ten = fixed(10 * scale)

    def step(value: int, margin: int, guard: bool) -> tuple[int, int, int, bool, bool]:
        digit, value = divmod(value, scale)
        value, margin = fixed(10 * value), fixed(10 * margin)
        if guard and width and margin <= 0:  # the margin overflowed: Java stops here
            return digit, value, margin, True, True
        high = fixed(value + margin) > ten if width else value + margin >= ten
        return digit, value, margin, value < margin, high

    digits: list[int] = []
    digit, value, margin, low, high = step(value, margin, guard=False)
    if digit or high:
        digits.append(digit)
    else:  # the estimate was one too high
        decade -= 1
    if decade < -3 or decade >= 8:  # E-form wants a digit after the point
        low = high = False
    while not (low or high):
        digit, value, margin, low, high = step(value, margin, guard=True)
        digits.append(digit)
    point = decade + 1
    above_half = fixed(fixed(2 * value) - ten)
    if high and (not low or above_half > 0 or (above_half == 0 and digits[-1] % 2)):
        point += _round_up(digits)
    return "".join(map(str, digits)), point


def _bits_of_five(k: int) -> int:
    """Java's bit count for 5^k: exact up to 5^26, 3 bits a five beyond."""
    return (5**k).bit_length() if 0 < k < 27 else 3 * k


def _round_up(digits: list[int]) -> int:
    """Adds one to the last digit in place; 1 when it carried out of the first (999 -> 1 at one place higher)."""
    i = len(digits) - 1
    while i > 0 and digits[i] == 9:
        digits[i] = 0
        i -= 1
    if digits[i] == 9:
        digits[0] = 1
        return 1
    digits[i] += 1
    return 0
