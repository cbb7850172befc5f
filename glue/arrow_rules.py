"""The job's rules for ONE upload, on Arrow arrays: the vectorised engine. Same answers as transform.py, row for row.

transform.py states the rules (and stays the engine for uploads too big for one task); this module computes the same
rows with pyarrow.compute on the whole upload at once, which is several times faster than Spark's row-by-row plan
for the files most uploads are. Where Java and Arrow disagree by nature (lower/title case of non-ASCII text) the
few rows concerned are computed in Python with Java's rules; regular expressions are written so that Java and RE2
read them alike (see transform.py). tests/test_engine_parity.py holds the two engines to identical output files.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import transform

NANOS = 1_000_000_000  # the exact amount's unit is 1e-9 (transform.AMOUNT_EXACT_TYPE has scale 9)
_EXACT_SCALE = Decimal(1).scaleb(-9)
_CURRENCY_AND_SPACES = f"[{transform.CURRENCY_AND_SPACES}]"
_STRING_NULL = pa.scalar(None, pa.string())
_NON_ASCII_SPACES = "".join(c for c in transform.WHITESPACE_CHARS if not c.isascii())
assert set(transform.WHITESPACE_CHARS) - set(_NON_ASCII_SPACES) == set(" \t\n\v\f\r"), "ascii_split_whitespace's set"


@dataclass
class Processed:
    """One upload's processed rows (OUTPUT_COLUMNS + line_number, in line order) and their counts."""

    table: pa.Table
    duplicates_removed: int
    quality_issues: dict[str, int] = field(default_factory=dict)


def _trimmed_or_null(values: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim(values, characters=transform.WHITESPACE_CHARS)
    return pc.if_else(pc.equal(trimmed, ""), _STRING_NULL, trimmed)


# Cased letters Unicode 14 added: Python 3.11 (Unicode 14) and Arrow case them, Java 17 (Unicode 13) leaves them as
# they are, so Spark does too.
_UNCASED_IN_JAVA_17 = frozenset(
    [chr(c) for c in (0x2C2F, 0x2C5F, 0xA7C0, 0xA7C1, 0xA7D0, 0xA7D1, 0xA7D6, 0xA7D7, 0xA7D8, 0xA7D9)]
    + [chr(c) for c in range(0x10570, 0x105BD)]  # Vithkuqi
)


def _java_lower_text(text: str) -> str:
    """Java 17's String.toLowerCase: Python's full mappings (final sigma, 'İ'), minus Unicode 14's new letters."""
    if _UNCASED_IN_JAVA_17.isdisjoint(text):
        return text.lower()
    return "".join(c if c in _UNCASED_IN_JAVA_17 else c.lower() for c in text)


def _java_title_first(word: str) -> str:
    # Java's Character.toTitleCase(char): a simple (one char) mapping on UTF-16 chars, so astral letters stay.
    if not word or ord(word[0]) > 0xFFFF or word[0] in _UNCASED_IN_JAVA_17:
        return word
    title = word[0].title()
    return (title if len(title) == 1 else word[0]) + word[1:]


def java_initcap(text: str) -> str:
    """Spark's initcap(): lower case, then the first char and every char after a space in title case."""
    return " ".join(_java_title_first(w) for w in _java_lower_text(text).split(" "))


@functools.cache
def _cased_unlike_java() -> str:
    """A regex class of the characters Arrow (utf8proc: simple case mappings) cases unlike Java (full mappings:
    'İ' lowers to two chars, final sigma; Character.toTitleCase keeps 'ß' and titles digraphs; the Ohm and Kelvin
    signs lower to letters Java then titles; astral chars are left alone by Java's UTF-16 title case). Worked out
    once over every BMP character, each alone as a word, against the Python rules above."""
    chars = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    arrow_lower = pc.utf8_lower(pa.array(chars)).to_pylist()
    arrow_title = pc.utf8_capitalize(pa.array(chars)).to_pylist()
    special = {
        c
        for c, a_low, a_title in zip(chars, arrow_lower, arrow_title, strict=True)
        if a_low != _java_lower_text(c) or a_title != java_initcap(c)
    }
    special.add("\u03a3")  # Σ lowers to ς at the end of a word: context, so not seen char by char
    return "[" + "".join(re.escape(c) for c in sorted(special)) + "\U00010000-\U0010ffff]"


def _where(values: pa.Array, pattern: str) -> pa.Array:
    """Where `values` match `pattern` (False for null); the pattern is only run on the rows that are not ASCII."""
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(values), True))
    if not pc.any(non_ascii).as_py():
        return non_ascii
    found = pc.fill_null(pc.match_substring_regex(pc.filter(values, non_ascii), pattern), False)
    return pc.replace_with_mask(non_ascii, non_ascii, found)


def _replace_where(values: pa.Array, where: pa.Array, replace: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """`values` with the rows `where` is true replaced by `replace(those rows)`."""
    if not pc.any(where).as_py():
        return values
    return pc.replace_with_mask(values, where, replace(pc.filter(values, where)))


def _java_where_needed(values: pa.Array, arrow_result: pa.Array, java: Callable[[str], str]) -> pa.Array:
    """`arrow_result`, with the (rare) rows holding a character Arrow cases unlike Java computed by `java`."""
    needed = _where(values, _cased_unlike_java())
    if not pc.any(needed).as_py():
        return arrow_result
    originals = pc.filter(values, needed).to_pylist()
    return pc.replace_with_mask(arrow_result, needed, pa.array([java(s) for s in originals], pa.string()))


def java_lower(values: pa.Array) -> pa.Array:
    """Spark's lower(): Java's String.toLowerCase."""
    return _java_where_needed(values, pc.utf8_lower(values), _java_lower_text)


def proper_case(names: pa.Array) -> pa.Array:
    """transform.clean's name rule: inner whitespace collapsed to one space, then initcap."""
    # Split on runs of ASCII whitespace (after the other spaces of WHITESPACE_CHARS became ' '), joined by ' '.
    wide_space = _where(names, f"[{_NON_ASCII_SPACES}]")
    names = _replace_where(names, wide_space, lambda v: pc.replace_substring_regex(v, f"[{_NON_ASCII_SPACES}]", " "))
    words = pc.ascii_split_whitespace(names)
    collapsed = pc.binary_join(words, " ")
    capitalized = pc.utf8_capitalize(pc.list_flatten(words))
    rebuilt = pa.ListArray.from_arrays(words.offsets, capitalized, mask=pc.is_null(words))
    return _java_where_needed(collapsed, pc.binary_join(rebuilt, " "), java_initcap)


def _named_groups(regex: str, order: Sequence[str]) -> str:
    """transform.date_format_regex's groups (each starts with '(\\d') named after their unit, for extract_regex."""
    position = 0
    for unit in order:
        position = regex.index("(\\d", position)
        regex = f"{regex[:position]}(?P<{unit}>{regex[position + 1 :]}"
        position += 1
    return regex


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = np.where(np.isin(m, (4, 6, 9, 11)), 30, 31)
    return np.where(m == 2, np.where(leap, 29, 28), days)


def parse_dates(dates: pa.Array, date_formats: Sequence[str]) -> pa.Array:
    """The first format that matches AND names a real day gives the date; otherwise null (transform.clean)."""
    n = len(dates)
    days = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    for pattern in date_formats:
        regex, order = transform.date_format_regex(pattern)
        parts = pc.extract_regex(dates, _named_groups(regex, order))
        matched = pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False)
        if not matched.any():
            continue
        y, m, d = (
            pc.fill_null(pc.cast(pc.struct_field(parts, unit), pa.int64()), 0).to_numpy(zero_copy_only=False)
            for unit in "ymd"
        )
        real = matched & ~found & (m >= 1) & (m <= 12) & (d >= 1) & (d <= _days_in_month(y, m))
        days = np.where(real, _days_from_civil(y, m, d), days)
        found |= real
    return pa.array(days.astype(np.int32), pa.date32(), mask=~found)


@dataclass
class Amounts:
    """The amount rule's results: the double (output, category) and the exact value as whole units + nanos."""

    value: pa.Array  # float64, null when missing or not an amount
    units: np.ndarray  # int64, signed; 0 where null
    nanos: np.ndarray  # int64 in (-1e9, 1e9), same sign as units; 0 where null


def parse_amounts(amounts: pa.Array) -> Amounts:
    """transform.clean's amount rule: currency symbols and spaces removed, the pattern checked, ',' removed."""
    is_amount = pc.fill_null(pc.match_substring_regex(amounts, transform.AMOUNT_PATTERN), False)
    # Only the rows that are not amounts as they are can change by losing currency symbols and spaces: only they are
    # stripped and checked again.
    not_yet = pc.invert(is_amount)
    stripped = _replace_where(amounts, not_yet, lambda v: pc.replace_substring_regex(v, _CURRENCY_AND_SPACES, ""))
    if pc.any(not_yet).as_py():
        again = pc.match_substring_regex(pc.filter(stripped, not_yet), transform.AMOUNT_PATTERN)
        is_amount = pc.replace_with_mask(is_amount, not_yet, pc.fill_null(again, False))
    plain = pc.if_else(is_amount, pc.replace_substring(stripped, ",", ""), _STRING_NULL)
    parts = pc.extract_regex(plain, r"^(?P<sign>[+-]?)(?P<units>\d*)(?:\.(?P<frac>\d*))?\z")
    units_text = pc.struct_field(parts, "units")
    frac_text = pc.fill_null(pc.struct_field(parts, "frac"), "")
    units = pc.fill_null(pc.cast(pc.if_else(pc.equal(units_text, ""), "0", units_text), pa.int64()), 0)
    nanos_text = pc.utf8_rpad(pc.utf8_slice_codeunits(frac_text, 0, 9), 9, "0")
    nanos = pc.fill_null(pc.cast(nanos_text, pa.int64()), 0)
    negative = pc.fill_null(pc.equal(pc.struct_field(parts, "sign"), "-"), False).to_numpy(zero_copy_only=False)
    units_np = units.to_numpy(zero_copy_only=False).copy()
    nanos_np = nanos.to_numpy(zero_copy_only=False).copy()
    # More than 9 decimals: rounded half up to 9, as Spark's cast to decimal(38,9) does (rare: done in Python).
    long_fraction = pc.fill_null(pc.greater(pc.utf8_length(frac_text), 9), False).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(long_fraction):
        exact = Decimal(plain[i].as_py()).copy_abs().quantize(_EXACT_SCALE, rounding=ROUND_HALF_UP)
        units_np[i], nanos_np[i] = divmod(int(exact.scaleb(9)), NANOS)
    units_np = np.where(negative, -units_np, units_np)
    nanos_np = np.where(negative, -nanos_np, nanos_np)
    return Amounts(pc.cast(plain, pa.float64()), units_np, nanos_np)


def amount_category(amount: pa.Array) -> pa.Array:
    """low < 100 <= medium < 200 <= high; null when there is no amount."""
    return pc.if_else(
        pc.less(amount, transform.LOW_MEDIUM_BOUNDARY),
        "low",
        pc.if_else(pc.less(amount, transform.MEDIUM_HIGH_BOUNDARY), "medium", "high"),
    )


def _mask(n: int, flags: dict[str, np.ndarray]) -> np.ndarray:
    mask = np.zeros(n, dtype=np.int64)
    for kind, flag in flags.items():
        mask |= flag.astype(np.int64) << transform.ISSUE_KINDS.index(kind)
    return mask


def _decimal_text(units: np.ndarray, nanos: np.ndarray) -> pa.Array:
    """transform.decimal_text for exact values given as units + nanos with 0 <= nanos < 1e9: 1234.5, -0.25, 150.0."""
    negative = units < 0
    # For a negative value u + n/1e9 (u < 0): its magnitude is (-u - 1) + (1e9 - n)/1e9 when n > 0.
    whole = np.where(negative, -units - (nanos > 0), units)
    fraction = np.where(negative & (nanos > 0), NANOS - nanos, nanos)
    digits = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 9, "0")
    digits = pc.utf8_rtrim(digits, characters="0")
    digits = pc.if_else(pc.equal(digits, ""), "0", digits)
    text = pc.binary_join_element_wise(pc.cast(pa.array(whole), pa.string()), digits, ".")
    return pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""), text)


def running_totals(status: pa.Array, order: np.ndarray, amounts: Amounts, has_amount: np.ndarray) -> pa.Array:
    """Exact cumulative sums of the amounts within each status, in `order` (row indices sorted by status first);
    null until the first amount of the status, as Spark's SUM over a window. Returned in row order."""
    n = len(order)
    if n == 0:
        return pa.array([], pa.string())
    # A null status is a group of its own (as in a Spark window partition).
    codes = pc.dictionary_encode(pc.take(status, pa.array(order))).indices
    status_codes = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, status_codes[1:] != status_codes[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    units, nanos, counted = amounts.units[order], amounts.nanos[order], has_amount[order].astype(np.int64)
    if np.abs(units).sum() >= 2**62:  # beyond int64 sums: Python integers (slow, and never seen in real data)
        units = units.astype(object)

    def within_group(values: np.ndarray) -> np.ndarray:
        total = np.cumsum(values)
        before = np.where(group_start > 0, total[group_start - 1], 0)
        return total - before

    carry, nanos_total = np.divmod(within_group(nanos), NANOS)
    units_total = within_group(units) + carry
    text = _decimal_text(units_total.astype(np.int64), nanos_total)
    text = pc.if_else(pa.array(within_group(counted) > 0), text, _STRING_NULL)
    in_row_order = np.empty(n, dtype=np.int64)
    in_row_order[order] = np.arange(n)
    return pc.take(text, pa.array(in_row_order))


@dataclass
class Cleaned:
    """The row-local rules' results for some rows (transform.clean): cleaned values, issue bits, comparable rows."""

    id: pa.Array
    name: pa.Array
    email: pa.Array
    email_valid: pa.Array
    date: pa.Array
    amounts: Amounts
    status: pa.Array
    id_number: pa.Array  # int64: the id when it is a whole number (it then sorts numerically), else null
    mask: np.ndarray  # issue bits (ISSUE_KINDS order) except duplicate_id
    row_text: pa.Array  # the raw values joined: equal for exact duplicates

    @staticmethod
    def concat(parts: list[Cleaned]) -> Cleaned:
        if len(parts) == 1:
            return parts[0]

        def arrays(name: str) -> pa.Array:
            return pa.concat_arrays([getattr(p, name) for p in parts])

        amounts = Amounts(
            pa.concat_arrays([p.amounts.value for p in parts]),
            np.concatenate([p.amounts.units for p in parts]),
            np.concatenate([p.amounts.nanos for p in parts]),
        )
        columns = ("id", "name", "email", "email_valid", "date", "status", "id_number", "row_text")
        return Cleaned(**{c: arrays(c) for c in columns}, amounts=amounts, mask=np.concatenate([p.mask for p in parts]))


def by_distinct_value(values: pa.Array, rule: Callable[[pa.Array], dict[str, pa.Array]]) -> dict[str, pa.Array]:
    """`rule` applied to each distinct value once and spread back to the rows (nulls: `rule` on a null), when the
    values repeat (names, dates, statuses do); applied to every row when they hardly do."""
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    if len(distinct) > len(values) // 2:
        return rule(values)
    # The distinct values, then a null: null rows point at it.
    answers = rule(pa.concat_arrays([distinct, pa.nulls(1, distinct.type)]))
    index = pc.fill_null(encoded.indices, len(distinct))
    return {name: pc.take(answer, index) for name, answer in answers.items()}


def clean(raw: dict[str, pa.Array], date_formats: Sequence[str] = transform.DEFAULT_DATE_FORMATS) -> Cleaned:
    """The row-local rules on raw REQUIRED_COLUMNS strings (null for empty fields); rows are independent."""
    row_id, email = _trimmed_or_null(raw["id"]), _trimmed_or_null(raw["email"])
    name = by_distinct_value(raw["name"], lambda v: {"name": proper_case(_trimmed_or_null(v))})["name"]
    email_valid = pc.fill_null(pc.match_substring_regex(email, transform.EMAIL_PATTERN), False)

    def date_rule(values: pa.Array) -> dict[str, pa.Array]:
        trimmed = _trimmed_or_null(values)
        return {"date": parse_dates(trimmed, date_formats), "missing": pc.is_null(trimmed)}

    def amount_rule(values: pa.Array) -> dict[str, pa.Array]:
        trimmed = _trimmed_or_null(values)
        amounts = parse_amounts(trimmed)
        units, nanos = pa.array(amounts.units), pa.array(amounts.nanos)
        return {"value": amounts.value, "units": units, "nanos": nanos, "missing": pc.is_null(trimmed)}

    dates = by_distinct_value(raw["date"], date_rule)
    amount_parts = by_distinct_value(raw["amount"], amount_rule)
    amounts = Amounts(
        amount_parts["value"],
        amount_parts["units"].to_numpy(zero_copy_only=False),
        amount_parts["nanos"].to_numpy(zero_copy_only=False),
    )
    status = by_distinct_value(raw["status"], lambda v: {"status": java_lower(_trimmed_or_null(v))})["status"]
    is_number = pc.fill_null(pc.match_substring_regex(row_id, transform.ID_NUMBER_PATTERN), False)
    id_number = pc.cast(pc.if_else(is_number, row_id, _STRING_NULL), pa.int64())

    def null(values: pa.Array) -> np.ndarray:
        return pc.is_null(values).to_numpy(zero_copy_only=False)

    no_date = dates["missing"].to_numpy(zero_copy_only=False)
    no_amount = amount_parts["missing"].to_numpy(zero_copy_only=False)
    flags = {
        transform.MISSING_ID: null(row_id),
        transform.MISSING_NAME: null(name),
        transform.MISSING_EMAIL: null(email),
        transform.INVALID_EMAIL: ~null(email) & ~email_valid.to_numpy(zero_copy_only=False),
        transform.MISSING_DATE: no_date,
        transform.INVALID_DATE: ~no_date & null(dates["date"]),
        transform.MISSING_AMOUNT: no_amount,
        transform.INVALID_AMOUNT: ~no_amount & null(amounts.value),
        transform.MISSING_STATUS: null(status),
    }
    # Exact duplicates are rows with the same raw values (a null is not an empty or any other value): compared as one
    # text per row, each value written as its length in bytes (N for a null), ':', the value, so no two different
    # rows can give the same text.
    pieces = []
    for c in transform.REQUIRED_COLUMNS:
        pieces += [pc.fill_null(pc.cast(pc.binary_length(raw[c]), pa.string()), "N"), pc.fill_null(raw[c], "")]
    row_text = pc.binary_join_element_wise(*pieces, ":")
    return Cleaned(
        row_id, name, email, email_valid, dates["date"], amounts, status, id_number, _mask(len(row_id), flags), row_text
    )


def clean_in_parallel(
    raw: dict[str, pa.Array], date_formats: Sequence[str], threads: int | None = None, rows_per_chunk: int = 100_000
) -> Cleaned:
    """`clean` on slices of the rows on several threads (Arrow's kernels run without the GIL), in row order."""
    n = len(raw[transform.REQUIRED_COLUMNS[0]])
    threads = max(1, min(threads or os.cpu_count() or 1, -(-n // rows_per_chunk)))
    if threads == 1:
        return clean(raw, date_formats)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    slices = [{c: v.slice(a, b - a) for c, v in raw.items()} for a, b in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(threads) as pool:
        return Cleaned.concat(list(pool.map(lambda part: clean(part, date_formats), slices)))


def process(
    raw: dict[str, pa.Array],
    line_number: pa.Array,
    source_file: str,
    processing_date: str,
    date_formats: Sequence[str] = transform.DEFAULT_DATE_FORMATS,
    threads: int | None = None,
) -> Processed:
    """All the rules on one upload's parsed rows (raw REQUIRED_COLUMNS strings, null for empty fields). `raw` is
    consumed (emptied once cleaned), so that a big upload's raw and cleaned values are not all held at once."""
    n = len(line_number)
    rows_all = clean_in_parallel(raw, date_formats, threads)
    raw.clear()  # consumed: the raw values are not needed any more (peak memory)

    # Exact duplicates: the first by line is kept.
    _, firsts = np.unique(pc.dictionary_encode(rows_all.row_text).indices.to_numpy(), return_index=True)
    rows_all.row_text = None  # type: ignore[assignment] - peak memory: the biggest column, no longer needed
    kept = np.sort(firsts)
    take = pa.array(kept)

    def kept_only(values: pa.Array) -> pa.Array:
        return pc.take(values, take)

    row_id, status, date = kept_only(rows_all.id), kept_only(rows_all.status), kept_only(rows_all.date)
    amount = kept_only(rows_all.amounts.value)
    kept_amounts = Amounts(amount, rows_all.amounts.units[kept], rows_all.amounts.nanos[kept])
    mask = rows_all.mask[kept]

    # Duplicate ids: an id on more than one kept row.
    id_counts = pa.table({"id": row_id}).group_by("id").aggregate([("id", "count")])
    repeated = pc.filter(id_counts.column("id"), pc.greater(id_counts.column("id_count"), 1))
    duplicate_id = pc.fill_null(pc.is_in(row_id, value_set=repeated), False).to_numpy(zero_copy_only=False)
    mask |= duplicate_id.astype(np.int64) << transform.ISSUE_KINDS.index(transform.DUPLICATE_ID)

    # Running totals: within a status, by date, then id (whole-number ids numerically), then line number.
    kept_lines = kept_only(pa.array(line_number, pa.int64()))
    keys = pa.table(
        {"status": status, "date": date, "id_number": kept_only(rows_all.id_number), "id": row_id, "line": kept_lines}
    )
    order = pc.sort_indices(
        keys, sort_keys=[(c, "ascending") for c in keys.column_names], null_placement="at_end"
    ).to_numpy(zero_copy_only=False)
    has_amount = pc.is_valid(amount).to_numpy(zero_copy_only=False)
    running = running_totals(status, order, kept_amounts, has_amount)

    rows = len(kept)
    table = pa.table(
        {
            "id": row_id,
            "name": kept_only(rows_all.name),
            "email": kept_only(rows_all.email),
            "email_valid": kept_only(rows_all.email_valid),
            "date": date,
            "amount": amount,
            "amount_category": amount_category(amount),
            "status": status,
            "running_total_by_status": running,
            "data_quality_issues": _issue_text(mask),
            "processing_date": constant(processing_date, rows),
            "source_file": constant(source_file, rows),
            transform.LINE_NUMBER: kept_lines,
        }
    )
    counts = {kind: int(((mask >> transform.ISSUE_KINDS.index(kind)) & 1).sum()) for kind in transform.ISSUE_KINDS}
    return Processed(table, n - rows, {k: v for k, v in counts.items() if v})


def _issue_text(mask: np.ndarray) -> pa.Array:
    """Every issue of the row in ISSUE_KINDS order, joined; '' when clean."""
    return pc.take(_ISSUE_TEXTS, pa.array(mask))


_ISSUE_TEXTS = pa.array(
    [
        transform.ISSUE_SEPARATOR.join(k for i, k in enumerate(transform.ISSUE_KINDS) if (m >> i) & 1)
        for m in range(1 << len(transform.ISSUE_KINDS))
    ],
    pa.string(),
)


def constant(value: str, n: int) -> pa.Array:
    return pc.cast(pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value])), pa.string())
