"""The job's rules, each implemented once, on Arrow arrays for the rows of one upload (the only engine).

Row-local rules (`clean`): trimmed values, name casing, email check, dates, exact amounts, lower-case status and the
issue bits. Rules over the upload's rows (`process`): exact duplicates (on cleaned values) removed, duplicate ids
flagged, running totals per status. CONTRACT.md states every rule; tests/test_rules.py is its executable form.
Spark only schedules this code (ingest.py); nothing here imitates another engine.
"""

from __future__ import annotations

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

from csv_ingest.contract import output

REQUIRED_COLUMNS = ("id", "name", "email", "date", "amount", "status")
LINE_NUMBER = "line_number"

DEFAULT_DATE_FORMATS = ("dd-MM-yyyy", "yyyy-MM-dd")
# Local part, "@", dot-separated domain labels, alphabetic top-level domain of 2+ letters (ASCII only).
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\z"
# After currency symbols and spaces are gone: optional sign, up to 15 integer digits (optionally in ',' thousands
# groups), decimals. Larger amounts are not amounts but mistakes (an id or a phone number in the wrong column).
AMOUNT_PATTERN = r"^[+-]?(\d{1,3}(,\d{3}){1,4}|\d{1,15})(\.\d+)?\z|^[+-]?\.\d+\z"
# Removed from amounts before they are read: currency symbols and spaces (incl. no-break spaces).
CURRENCY_AND_SPACES = "$€£¥₹₩₽¢" + " \t\u00a0\u2007\u202f\u3000"
# Ids that are whole numbers sort numerically (before the others, which sort as text).
ID_NUMBER_PATTERN = r"^-?\d{1,18}\z"
LOW_MEDIUM_BOUNDARY = 100
MEDIUM_HIGH_BOUNDARY = 200
# Amounts are exact decimals with at most this many decimals (more are rounded half up).
AMOUNT_SCALE = 9
# Whitespace trimmed and collapsed: ASCII plus the no-break and ideographic spaces seen in pasted data.
WHITESPACE_CHARS = " \t\r\n\u000b\f\u00a0\u2007\u202f\u3000"
# Name particles written in lower case when they are not the first word (van der Berg, Ludwig van Beethoven).
NAME_PARTICLES = ("van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "dos", "das", "ter")

# Quality issue kinds, in the order they are joined in `data_quality_issues` (and the keys of the stats).
MISSING_ID = "missing_id"
DUPLICATE_ID = "duplicate_id"
MISSING_NAME = "missing_name"
MISSING_EMAIL = "missing_email"
INVALID_EMAIL = "invalid_email"
MISSING_DATE = "missing_date"
INVALID_DATE = "invalid_date"
MISSING_AMOUNT = "missing_amount"
INVALID_AMOUNT = "invalid_amount"
MISSING_STATUS = "missing_status"
ISSUE_KINDS = (
    MISSING_ID,
    DUPLICATE_ID,
    MISSING_NAME,
    MISSING_EMAIL,
    INVALID_EMAIL,
    MISSING_DATE,
    INVALID_DATE,
    MISSING_AMOUNT,
    INVALID_AMOUNT,
    MISSING_STATUS,
)
ISSUE_SEPARATOR = ";"

NANOS = 10**AMOUNT_SCALE  # the exact amount's unit is 1e-9
_EXACT_SCALE = Decimal(1).scaleb(-AMOUNT_SCALE)
_CURRENCY_AND_SPACES = f"[{CURRENCY_AND_SPACES}]"
_STRING_NULL = pa.scalar(None, pa.string())
_NON_ASCII_SPACES = "".join(c for c in WHITESPACE_CHARS if not c.isascii())

_DATE_TOKENS = {
    "yyyy": (r"(\d{4})", "y"),
    "MM": (r"(\d{2})", "m"),
    "dd": (r"(\d{2})", "d"),
    "M": (r"(\d{1,2})", "m"),
    "d": (r"(\d{1,2})", "d"),
}


def date_format_regex(pattern: str) -> tuple[str, tuple[str, ...]]:
    """'dd-MM-yyyy' -> (r'^(\\d{2})\\-(\\d{2})\\-(\\d{4})\\z', ('d', 'm', 'y')). Supports yyyy, MM, M, dd, d."""
    regex, order = "^", []
    for token in re.findall(r"yyyy|MM|dd|M|d|.", pattern):
        if token in _DATE_TOKENS:
            part, unit = _DATE_TOKENS[token]
            regex += part
            order.append(unit)
        else:
            regex += re.escape(token)
    if sorted(order) != ["d", "m", "y"]:
        raise ValueError(f"date format {pattern!r} needs exactly one year (yyyy), month (MM or M) and day (dd or d)")
    return regex + r"\z", tuple(order)


@dataclass
class Processed:
    """One upload's processed rows (typed columns + line_number, in line order) and their counts."""

    table: pa.Table
    duplicates_removed: int
    quality_issues: dict[str, int] = field(default_factory=dict)


def _trimmed_or_null(values: pa.Array) -> pa.Array:
    """WHITESPACE_CHARS trimmed from both ends; empty -> null. Most columns have no value that starts or ends with
    one (judged on the values' first and last bytes, at once): they are returned as they are."""
    if not _may_need_trimming(values):
        # as a fresh array when a slice: pyarrow 17's if_else on a sliced string array and a null scalar gives
        # garbage (seen: id_number's cast failing on ' '), and before this shortcut every value here was fresh
        return values if values.offset == 0 else pa.concat_arrays([values])
    trimmed = pc.utf8_trim(values, characters=WHITESPACE_CHARS)
    return pc.if_else(pc.equal(trimmed, ""), _STRING_NULL, trimmed)


# First bytes of WHITESPACE_CHARS in UTF-8 (ASCII ones, and the lead bytes of the others), and their last bytes.
_WHITESPACE_UTF8 = [c.encode() for c in WHITESPACE_CHARS]
_MAY_START_WHITESPACE = np.zeros(256, bool)
_MAY_START_WHITESPACE[[b[0] for b in _WHITESPACE_UTF8]] = True
_MAY_END_WHITESPACE = np.zeros(256, bool)
_MAY_END_WHITESPACE[[b[-1] for b in _WHITESPACE_UTF8]] = True


def _may_need_trimming(values: pa.Array) -> bool:
    """Whether some present value is empty, or starts or ends with a byte a WHITESPACE_CHARS character can start or
    end with (a cheap over-approximation: then the values are trimmed)."""
    if values.null_count == len(values):  # nothing present (or no values)
        return False
    offsets, data = output.string_data(values)
    lengths = np.diff(offsets)
    present = pc.is_valid(values).to_numpy(zero_copy_only=False) if values.null_count else None
    filled = lengths > 0
    if (present is None and not filled.all()) or (present is not None and (present & ~filled).any()):
        return True  # an empty value: null
    starts, ends = offsets[:-1][filled], offsets[1:][filled] - 1
    return bool(_MAY_START_WHITESPACE[data[starts]].any() or _MAY_END_WHITESPACE[data[ends]].any())


def _where(values: pa.Array, pattern: str) -> pa.Array:
    """Where `values` match `pattern` (False for null)."""
    return pc.fill_null(pc.match_substring_regex(values, pattern), False)


def _replace_where(values: pa.Array, where: pa.Array, replace: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """`values` with the rows `where` is true replaced by `replace(those rows)`."""
    if not pc.any(where).as_py():
        return values
    return pc.replace_with_mask(values, where, replace(pc.filter(values, where)))


def _mc(word: str) -> str:
    """Mc + a capital: Mcdonald -> McDonald (the rest of the word as title case made it)."""
    return re.sub(r"(?:(?<=^)|(?<=[ '\-\u2019]))Mc(\w)", lambda m: "Mc" + m.group(1).upper(), word)


def proper_case(names: pa.Array) -> pa.Array:
    """The name rule: whitespace runs become one space; every word is title-cased, with a capital after a hyphen
    or an apostrophe (Jean-Luc, O'Brien) and after a leading Mc (McDonald); the particles of NAME_PARTICLES are
    lower case unless they start the name (Ludwig van Beethoven, Van der Berg)."""
    wide_space = _where(names, f"[{_NON_ASCII_SPACES}]")
    names = _replace_where(names, wide_space, lambda v: pc.replace_substring_regex(v, f"[{_NON_ASCII_SPACES}]", " "))
    collapsed = pc.binary_join(pc.ascii_split_whitespace(names), " ")
    # utf8_title: upper case after any non-letter, lower case after a letter (so "o'brien" -> "O'Brien").
    titled = pc.utf8_title(collapsed)
    # The particles and Mc are the documented exceptions to title case.
    for particle in NAME_PARTICLES:
        spaced = f" {particle.title()} "
        titled = pc.replace_substring(pc.replace_substring(titled, spaced, f" {particle} "), spaced, f" {particle} ")
    mc = _where(titled, r"(^|[ '\-\x{2019}])Mc\w")
    return _replace_where(titled, mc, lambda v: pa.array([_mc(s) for s in v.to_pylist()], pa.string()))


def lower(values: pa.Array) -> pa.Array:
    """Unicode lower case (Arrow's utf8_lower: simple case mappings)."""
    return pc.utf8_lower(values)


def _named_groups(regex: str, order: Sequence[str]) -> str:
    """date_format_regex's groups (each starts with '(\\d') named after their unit, for extract_regex."""
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


def days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gregorian: February has 29 days in years divisible by 4, except centuries not divisible by 400."""
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = np.where(np.isin(m, (4, 6, 9, 11)), 30, 31)
    return np.where(m == 2, np.where(leap, 29, 28), days)


def parse_dates(dates: pa.Array, date_formats: Sequence[str]) -> pa.Array:
    """The first format (in the configured order) that matches AND names a real day (year 0001-9999) gives the
    date; otherwise null."""
    n = len(dates)
    days = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    for pattern in date_formats:
        regex, order = date_format_regex(pattern)
        parts = pc.extract_regex(dates, _named_groups(regex, order))
        matched = pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False)
        if not matched.any():
            continue
        y, m, d = (
            pc.fill_null(pc.cast(pc.struct_field(parts, unit), pa.int64()), 0).to_numpy(zero_copy_only=False)
            for unit in "ymd"
        )
        real = matched & ~found & (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= days_in_month(y, m))
        days = np.where(real, _days_from_civil(y, m, d), days)
        found |= real
    return pa.array(days.astype(np.int32), pa.date32(), mask=~found)


@dataclass
class Amounts:
    """Exact amounts as whole units + nanos (same sign), and whether there is one."""

    units: np.ndarray  # int64, signed; 0 where null
    nanos: np.ndarray  # int64 in (-1e9, 1e9), same sign as units; 0 where null
    valid: np.ndarray  # bool


def parse_amounts(amounts: pa.Array) -> Amounts:
    """The amount rule: currency symbols and spaces removed, AMOUNT_PATTERN checked, ',' removed, read exactly;
    more than 9 decimals are rounded half up to 9. Amounts already written plainly (_PLAIN_AMOUNT: most of them) are
    read by Arrow's decimal cast at once; the others by the patterns (_amounts_by_pattern), with the same result."""
    n = len(amounts)
    units, nanos, valid = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    plain = pc.fill_null(pc.match_substring_regex(amounts, _PLAIN_AMOUNT), False)
    rest = ~plain.to_numpy(zero_copy_only=False)
    if plain.true_count:
        where = np.flatnonzero(~rest)
        exact = pc.cast(amounts.filter(plain), AMOUNT_DECIMAL)
        words = np.frombuffer(exact.buffers()[1], np.int64)[2 * exact.offset : 2 * (exact.offset + len(exact))]
        low, high = words[0::2], words[1::2]  # the unscaled value: a 128-bit integer, little-endian
        # within int64 and not its least value (its magnitude is not an int64): amounts below 9.2 billion
        fits = (high == (low >> 63)) & (low != np.iinfo(np.int64).min)
        value = low[fits]
        whole = np.abs(value) // NANOS * np.sign(value)
        units[where[fits]], nanos[where[fits]], valid[where[fits]] = whole, value - whole * NANOS, True
        rest[where[~fits]] = True
    if rest.any():
        where = np.flatnonzero(rest)
        other = _amounts_by_pattern(amounts.take(pa.array(where)))
        units[where], nanos[where], valid[where] = other.units, other.nanos, other.valid
    return Amounts(units, nanos, valid)


# AMOUNT_PATTERN's plain forms (no ',', no currency or space, at most 9 decimals): read as they are.
_PLAIN_AMOUNT = r"^[+-]?(\d{1,15}(\.\d{1,9})?|\.\d{1,9})\z"
AMOUNT_DECIMAL = pa.decimal128(24, 9)


def _amounts_by_pattern(amounts: pa.Array) -> Amounts:
    """parse_amounts by AMOUNT_PATTERN and regular expressions (any amount)."""
    stripped = pc.replace_substring_regex(amounts, _CURRENCY_AND_SPACES, "")
    is_amount = pc.fill_null(pc.match_substring_regex(stripped, AMOUNT_PATTERN), False)
    plain = pc.if_else(is_amount, pc.replace_substring(stripped, ",", ""), _STRING_NULL)
    parts = pc.extract_regex(plain, r"^(?P<sign>[+-]?)(?P<units>\d*)(?:\.(?P<frac>\d*))?\z")
    units_text = pc.struct_field(parts, "units")
    frac_text = pc.fill_null(pc.struct_field(parts, "frac"), "")
    units = pc.fill_null(pc.cast(pc.if_else(pc.equal(units_text, ""), "0", units_text), pa.int64()), 0)
    nanos_text = pc.utf8_rpad(pc.utf8_slice_codeunits(frac_text, 0, AMOUNT_SCALE), AMOUNT_SCALE, "0")
    nanos = pc.fill_null(pc.cast(nanos_text, pa.int64()), 0)
    negative = pc.fill_null(pc.equal(pc.struct_field(parts, "sign"), "-"), False).to_numpy(zero_copy_only=False)
    units_np = units.to_numpy(zero_copy_only=False).copy()
    nanos_np = nanos.to_numpy(zero_copy_only=False).copy()
    long_fraction = pc.fill_null(pc.greater(pc.utf8_length(frac_text), AMOUNT_SCALE), False)
    for i in np.flatnonzero(long_fraction.to_numpy(zero_copy_only=False)):  # rare: done in Python
        exact = Decimal(plain[i].as_py()).copy_abs().quantize(_EXACT_SCALE, rounding=ROUND_HALF_UP)
        units_np[i], nanos_np[i] = divmod(int(exact.scaleb(AMOUNT_SCALE)), NANOS)
    units_np = np.where(negative, -units_np, units_np)
    nanos_np = np.where(negative, -nanos_np, nanos_np)
    return Amounts(units_np, nanos_np, is_amount.to_numpy(zero_copy_only=False))


def amount_category(amounts: Amounts) -> pa.Array:
    """low < 100 <= medium < 200 <= high, on the exact amount; null when there is no amount. (units and nanos share
    the sign, so for a whole boundary B: amount < B exactly when units < B.)"""
    units = amounts.units
    which = (units >= LOW_MEDIUM_BOUNDARY).astype(np.int8) + (units >= MEDIUM_HIGH_BOUNDARY)
    return pc.take(_CATEGORIES, pa.array(which, mask=~amounts.valid))


_CATEGORIES = pa.array(["low", "medium", "high"], pa.string())


def _mask(n: int, flags: dict[str, np.ndarray]) -> np.ndarray:
    mask = np.zeros(n, dtype=np.int64)
    for kind, flag in flags.items():
        mask |= flag.astype(np.int64) << ISSUE_KINDS.index(kind)
    return mask


def decimal_text(units: np.ndarray, nanos: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Exact values (units + nanos, same sign) as plain decimal text with at least one decimal digit and never an
    exponent: 1234.5, -0.25, 150.0, 12500000.0, 0.0001. Null where not `valid`."""
    negative = (units < 0) | (nanos < 0)
    whole = np.abs(units)
    fraction = np.abs(nanos)
    digits = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), AMOUNT_SCALE, "0")
    digits = pc.ascii_rtrim(digits, characters="0")
    if not fraction.all():  # a whole amount: one decimal digit, 0
        digits = pc.if_else(pa.array(fraction == 0), "0", digits)
    # A row not valid is null from here on (the join keeps a null). Totals beyond int64 are Python integers
    # (running_totals): written from Python, never through int64.
    mask = ~np.asarray(valid, bool)
    if whole.dtype == object:
        whole_text = pa.array([str(v) for v in whole], pa.string(), mask=mask)
    else:
        whole_text = pc.cast(pa.array(whole, mask=mask), pa.string())
    text = pc.binary_join_element_wise(whole_text, digits, ".")
    if negative.any():
        text = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""), text)
    return text


# An amount already written as decimal_text writes it: no sign but '-', no leading zero, a decimal point, 1-9 decimals
# without trailing zeros (so never "-0.0": a negative one has a non-zero digit).
_AS_DECIMAL_TEXT = r"^-?(0|[1-9]\d{0,14})\.\d{0,8}[1-9]\z"


def amount_text(trimmed: pa.Array, amounts: Amounts) -> pa.Array:
    """decimal_text of the amounts read from `trimmed`: the amounts already written that way (most) kept as they
    are, the others made by decimal_text."""
    same = pc.fill_null(pc.match_substring_regex(trimmed, _AS_DECIMAL_TEXT), False)
    if not same.true_count:
        return decimal_text(amounts.units, amounts.nanos, amounts.valid)
    other = np.flatnonzero(~same.to_numpy(zero_copy_only=False))
    if not len(other):
        return trimmed
    made = decimal_text(amounts.units[other], amounts.nanos[other], amounts.valid[other])
    return pc.replace_with_mask(trimmed, pc.invert(same), made.cast(trimmed.type))


def first_by_line(row_key: pa.Array, line_number: pa.Array, upload: np.ndarray | None = None) -> np.ndarray:
    """Exact duplicates: True for the first row (by line number) of each distinct row key, False for its copies.
    `upload`: which upload each row belongs to (several uploads processed together); rows of different uploads are
    never duplicates of each other."""
    lines = np.asarray(pc.cast(line_number, pa.int64()).to_numpy(zero_copy_only=False))
    codes = pc.dictionary_encode(row_key).indices.to_numpy(zero_copy_only=False)
    if not len(codes):
        return np.zeros(0, bool)
    if upload is None:
        order = np.lexsort((lines, codes))  # by key, then line
        first = np.r_[True, codes[order][1:] != codes[order][:-1]]
    else:
        order = np.lexsort((lines, codes, upload))  # by upload, key, then line
        same = (codes[order][1:] == codes[order][:-1]) & (upload[order][1:] == upload[order][:-1])
        first = np.r_[True, ~same]
    kept = np.zeros(len(codes), bool)
    kept[order[first]] = True
    return kept


def id_groups(row_id: pa.Array, upload: np.ndarray | None = None, id_number: pa.Array | None = None) -> np.ndarray:
    """A number per row, equal for rows with the same id (in the same upload), -1 for a missing id. `id_number`
    (the ids' id_number, when the caller has it) only makes it faster."""
    if not len(row_id):
        return np.zeros(0, np.int64)
    codes = id_codes(row_id, id_number)
    if upload is None:
        return codes
    pair = upload.astype(np.int64) * (int(codes.max()) + 2) + codes + 1  # (upload, id); a null id is -1 below
    _, group = np.unique(pair, return_inverse=True)
    return np.where(codes >= 0, group, -1)


def id_codes(row_id: pa.Array, id_number: pa.Array | None = None) -> np.ndarray:
    """A code per row, equal exactly for equal ids, -1 for a missing id. Ids written as plain whole numbers (the
    text of their id_number: "7", not "007" or "-0") are coded by that number, which is one-to-one with their text
    and cheaper to group (np.unique of int64: a third of the time of hashing a million strings); the other ids by
    their text, after them."""
    if id_number is None:
        return pc.fill_null(pc.dictionary_encode(row_id).indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    plain = pc.fill_null(pc.equal(pc.cast(id_number, pa.string()), row_id), False)
    if plain.false_count == 0:  # every id a plain number (no nulls)
        return np.unique(id_number.to_numpy(), return_inverse=True)[1].astype(np.int64)
    codes = np.full(len(row_id), -1, np.int64)
    where_plain = plain.to_numpy(zero_copy_only=False)
    numbers = pc.filter(id_number, plain).to_numpy()
    distinct, codes[where_plain] = np.unique(numbers, return_inverse=True)
    others = ~where_plain & pc.is_valid(row_id).to_numpy(zero_copy_only=False)
    if others.any():
        text = pc.filter(row_id, pa.array(others))
        codes[others] = pc.dictionary_encode(text).indices.to_numpy(zero_copy_only=False) + len(distinct)
    return codes


def repeated(groups: np.ndarray) -> np.ndarray:
    """True where the row's group (id_groups; -1 is no group) has more than one row."""
    if not len(groups):
        return np.zeros(0, bool)
    counts = np.bincount(groups + 1)
    return (counts[groups + 1] > 1) & (groups >= 0)


def duplicate_ids(row_id: pa.Array, upload: np.ndarray | None = None) -> np.ndarray:
    """duplicate_id: True for every (kept) row whose id is on more than one kept row (of the same upload)."""
    return repeated(id_groups(row_id, upload))


RUNNING_TOTAL_ORDER = ("status", "date", "id_number", "id", "line_number")


def running_total_order(
    status: pa.Array,
    date: pa.Array,
    id_number: pa.Array,
    row_id: pa.Array,
    line_number: pa.Array,
    upload: np.ndarray | None = None,
) -> np.ndarray:
    """Row indices in running-total order: by status, then date, then id (whole-number ids numerically, before the
    others), then line number; missing values last; strings compared byte by byte. `upload` given: by upload first
    (each upload's totals apart)."""
    line = np.asarray(pc.cast(line_number, pa.int64()).to_numpy(zero_copy_only=False))
    major, number, text = running_total_keys(status, date, id_number, row_id)
    if upload is None:
        key = _packed_key(major, number, text, line)
        if key is not None:
            return np.argsort(key)  # one unique key per row: no ties, any sort gives the one order
    keys = [line] + ([text] if text.any() else []) + [number, major] + ([upload] if upload is not None else [])
    return np.lexsort(keys)  # the last key first


def running_total_key(
    status: pa.Array, date: pa.Array, id_number: pa.Array, row_id: pa.Array, line_number: pa.Array
) -> np.ndarray | None:
    """One int64 per row that sorts as running_total_order does (unique: the line number is in it), or None when
    the order does not fit in 63 bits (ids that are not whole numbers, or spans of ids and lines too wide)."""
    line = np.asarray(pc.cast(line_number, pa.int64()).to_numpy(zero_copy_only=False))
    return _packed_key(*running_total_keys(status, date, id_number, row_id), line)


def _packed_key(major: np.ndarray, number: np.ndarray, text: np.ndarray, line: np.ndarray) -> np.ndarray | None:
    """(major, number, line) as one int64 in the same order, when no text rank is needed and their spans fit in 63
    bits (else None): each as its offset from its smallest value."""
    if not len(line) or text.any():
        return None
    low = [int(v.min()) for v in (major, number, line)]
    bits = [(int(v.max()) - lo).bit_length() for v, lo in zip((major, number, line), low, strict=True)]
    if sum(bits) > 63:
        return None
    return ((major - low[0]) << (bits[1] + bits[2])) | ((number - low[1]) << bits[2]) | (line - low[2])


def running_total_keys(
    status: pa.Array, date: pa.Array, id_number: pa.Array, row_id: pa.Array
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The running-total order as three int64 keys, compared in turn (then the line number): `major` (status rank,
    date, whether the id is not a whole number: equal for rows of one status and date and kind of id), `number` (the
    id's number) and `text` (the rank of the id's text among the ids that need it: those that are no whole number,
    and the whole numbers written otherwise -- "007" -- with those written plainly alike, which tie on their number;
    0 where the number alone decides)."""
    n = len(status)
    no_number = pc.is_null(id_number).to_numpy(zero_copy_only=False)
    days = pc.cast(date, pa.int32())
    first, last = (pc.min_max(days)[k].as_py() for k in ("min", "max"))
    first = first if first is not None else 0
    # days from the first date; a missing date one day after the last
    since = pc.fill_null(days, (last if last is not None else 0) + 1).to_numpy(zero_copy_only=False) - first
    days_span = (last if last is not None else 0) + 2 - first
    major = (_ranks(status) * days_span + since.astype(np.int64)) * 2 + no_number
    number = pc.fill_null(id_number, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    text = np.zeros(n, np.int64)
    plain = pc.fill_null(pc.equal(pc.cast(id_number, pa.string()), row_id), False).to_numpy(zero_copy_only=False)
    need = ~plain
    if need.all():
        text = _ranks(row_id)
    elif need.any():
        # whole numbers written otherwise tie with the plain ones of the same number: those are ranked too
        need |= np.isin(number, number[need & ~no_number]) & ~no_number
        where = np.flatnonzero(need)
        text[where] = _ranks(row_id.take(pa.array(where)))
    return major, number, text


def _ranks(values: pa.Array) -> np.ndarray:
    """Each value's rank among the distinct values (Arrow's order: strings byte by byte), nulls after them all."""
    encoded = pc.dictionary_encode(values)
    distinct = len(encoded.dictionary)
    rank = np.empty(distinct + 1, np.int64)
    rank[pc.sort_indices(encoded.dictionary).to_numpy(zero_copy_only=False)] = np.arange(distinct)
    rank[distinct] = distinct
    return rank[pc.fill_null(encoded.indices, distinct).to_numpy(zero_copy_only=False)]


def running_totals(
    status: pa.Array, order: np.ndarray, amounts: Amounts, upload: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact cumulative sums of the amounts within each status, in `order` (row indices sorted by status first, by
    upload then status when `upload` is given): (units, nanos, valid) in row order; null (not valid) until the first
    amount of the status (in that upload)."""
    n = len(order)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    codes = pc.dictionary_encode(pc.take(status, pa.array(order))).indices  # a null status is a group of its own
    status_codes = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False)
    changes = status_codes[1:] != status_codes[:-1]
    if upload is not None:
        changes |= upload[order][1:] != upload[order][:-1]
    starts = np.flatnonzero(np.r_[True, changes])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    units, nanos = amounts.units[order], amounts.nanos[order]
    counted = amounts.valid[order].astype(np.int64)
    # Sums that may pass int64 (bounded by n * the largest amount, in Python integers: an int64 sum of the amounts
    # could itself overflow): Python integers (slow, and never seen in real data).
    if int(np.abs(units).max()) * n >= 2**62:
        units = units.astype(object)

    def within_group(values: np.ndarray) -> np.ndarray:
        total = np.cumsum(values)
        before = np.where(group_start > 0, total[group_start - 1], 0)
        return total - before

    # Signed units + nanos: carry so that both share the sign of the total (on Python integers alike).
    carry, nanos_total = np.divmod(within_group(nanos), NANOS)
    units_total = within_group(units) + carry
    negative = (units_total < 0) & (nanos_total > 0)
    units_total = np.where(negative, units_total + 1, units_total)
    nanos_total = np.where(negative, nanos_total - NANOS, nanos_total)
    valid = within_group(counted) > 0
    in_row_order = np.empty(n, dtype=np.int64)
    in_row_order[order] = np.arange(n)
    return units_total[in_row_order], nanos_total[in_row_order], valid[in_row_order]


@dataclass
class Cleaned:
    """The row-local rules' results for some rows: cleaned values, issue bits, and the text exact duplicates are
    compared on."""

    id: pa.Array
    name: pa.Array
    email: pa.Array
    email_valid: pa.Array
    date: pa.Array
    amounts: Amounts
    status: pa.Array
    id_number: pa.Array  # int64: the id when it is a whole number (it then sorts numerically), else null
    mask: np.ndarray  # issue bits (ISSUE_KINDS order) except duplicate_id
    amount_text: pa.Array  # the amount as written in the outputs (decimal_text), null when there is none
    date_trimmed: pa.Array  # the date and amount fields trimmed (null when empty): what a bad value is compared on
    amount_trimmed: pa.Array

    @staticmethod
    def concat(parts: list[Cleaned]) -> Cleaned:
        if len(parts) == 1:
            return parts[0]

        def arrays(name: str) -> pa.Array:
            return pa.concat_arrays([getattr(p, name) for p in parts])

        amounts = Amounts(
            *(np.concatenate([getattr(p.amounts, a) for p in parts]) for a in ("units", "nanos", "valid"))
        )
        columns = (
            "id", "name", "email", "email_valid", "date", "status", "id_number", "amount_text", "date_trimmed",
            "amount_trimmed",
        )  # fmt: skip
        return Cleaned(**{c: arrays(c) for c in columns}, amounts=amounts, mask=np.concatenate([p.mask for p in parts]))


DISTINCT_SAMPLE = 1 << 14


def by_distinct_value(values: pa.Array, rule: Callable[[pa.Array], dict[str, pa.Array]]) -> dict[str, pa.Array]:
    """`rule` applied to each distinct value once and spread back to the rows (nulls: `rule` on a null), when the
    values repeat (names, dates, statuses do); applied to every row when they hardly do (judged on the first
    DISTINCT_SAMPLE values first: encoding a million distinct amounts only to find they do not repeat costs more
    than the rule)."""
    if len(values) > 2 * DISTINCT_SAMPLE and len(pc.unique(values.slice(0, DISTINCT_SAMPLE))) > DISTINCT_SAMPLE // 2:
        return rule(values)
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    if len(distinct) > len(values) // 2:
        return rule(values)
    answers = rule(pa.concat_arrays([distinct, pa.nulls(1, distinct.type)]))  # the distinct values, then a null
    index = pc.fill_null(encoded.indices, len(distinct))
    return {name: pc.take(answer, index) for name, answer in answers.items()}


def _key_part(values: pa.Array) -> list[pa.Array]:
    """One value of a row key: its length in bytes (N for a null), then the value; no two rows share a key unless
    all their values are equal."""
    return [pc.fill_null(pc.cast(pc.binary_length(values), pa.string()), "N"), pc.fill_null(values, "")]


def clean(raw: dict[str, pa.Array], date_formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> Cleaned:
    """The row-local rules on raw REQUIRED_COLUMNS strings (null for empty fields); rows are independent."""
    row_id, email = _trimmed_or_null(raw["id"]), _trimmed_or_null(raw["email"])
    name = by_distinct_value(raw["name"], lambda v: {"name": proper_case(_trimmed_or_null(v))})["name"]
    email_valid = pc.fill_null(pc.match_substring_regex(email, EMAIL_PATTERN), False)

    def date_rule(values: pa.Array) -> dict[str, pa.Array]:
        trimmed = _trimmed_or_null(values)
        return {"date": parse_dates(trimmed, date_formats), "trimmed": trimmed}

    def amount_rule(values: pa.Array) -> dict[str, pa.Array]:
        trimmed = _trimmed_or_null(values)
        a = parse_amounts(trimmed)
        return {
            "units": pa.array(a.units),
            "nanos": pa.array(a.nanos),
            "valid": pa.array(a.valid),
            "text": amount_text(trimmed, a),
            "trimmed": trimmed,
        }

    dates = by_distinct_value(raw["date"], date_rule)
    amount_parts = by_distinct_value(raw["amount"], amount_rule)
    amounts = Amounts(
        *(
            amount_parts[a].to_numpy(zero_copy_only=False).astype(t)
            for a, t in (("units", np.int64), ("nanos", np.int64), ("valid", bool))
        )
    )
    status = by_distinct_value(raw["status"], lambda v: {"status": lower(_trimmed_or_null(v))})["status"]
    is_number = pc.fill_null(pc.match_substring_regex(row_id, ID_NUMBER_PATTERN), False)
    id_number = pc.cast(pc.if_else(is_number, row_id, _STRING_NULL), pa.int64())

    def null(values: pa.Array) -> np.ndarray:
        return pc.is_null(values).to_numpy(zero_copy_only=False)

    no_date = null(dates["trimmed"])
    no_amount = null(amount_parts["trimmed"])
    flags = {
        MISSING_ID: null(row_id),
        MISSING_NAME: null(name),
        MISSING_EMAIL: null(email),
        INVALID_EMAIL: ~null(email) & ~email_valid.to_numpy(zero_copy_only=False),
        MISSING_DATE: no_date,
        INVALID_DATE: ~no_date & null(dates["date"]),
        MISSING_AMOUNT: no_amount,
        INVALID_AMOUNT: ~no_amount & ~amounts.valid,
        MISSING_STATUS: null(status),
    }
    return Cleaned(
        row_id, name, email, email_valid, dates["date"], amounts, status, id_number, _mask(len(row_id), flags),
        amount_parts["text"], dates["trimmed"], amount_parts["trimmed"],
    )  # fmt: skip


def row_key(rows: Cleaned, take: pa.Array | None = None) -> pa.Array:
    """The text exact duplicates are compared on (of the rows `take`, or all): the cleaned values joined, equal
    exactly when the rows' cleaned values are; an invalid date or amount counts by its trimmed text (two different
    bad values are not the same row)."""

    def of(values: pa.Array) -> pa.Array:
        return values if take is None else pc.take(values, take)

    date, amount_valid = of(rows.date), of(pa.array(rows.amounts.valid))
    date_key = pc.if_else(pc.is_valid(date), pc.cast(date, pa.string()), of(rows.date_trimmed))
    amount_key = pc.if_else(amount_valid, of(rows.amount_text), of(rows.amount_trimmed))
    pieces = []
    for values in (of(rows.id), of(rows.name), of(rows.email), date_key, amount_key, of(rows.status)):
        pieces += _key_part(values)
    return pc.binary_join_element_wise(*pieces, ":")


def exact_duplicates_kept(
    rows: Cleaned, line_number: pa.Array, groups: np.ndarray, upload: np.ndarray | None = None
) -> np.ndarray:
    """Exact duplicates (first_by_line on the row key): True for the rows kept. `groups`: id_groups of the rows.
    Equal rows have equal ids, so only the rows whose id is repeated or missing are compared (rows with an id of
    their own are kept without building their key)."""
    kept = np.ones(len(groups), bool)
    maybe = np.flatnonzero(repeated(groups) | (groups < 0))
    if len(maybe):
        take = pa.array(maybe)
        lines = pc.take(pa.array(line_number, pa.int64()), take)
        kept[maybe] = first_by_line(row_key(rows, take), lines, upload[maybe] if upload is not None else None)
    return kept


def clean_in_parallel(
    raw: dict[str, pa.Array], date_formats: Sequence[str], threads: int | None = None, rows_per_chunk: int = 100_000
) -> Cleaned:
    """`clean` on slices of the rows on several threads (Arrow's kernels run without the GIL), in row order."""
    n = len(raw[REQUIRED_COLUMNS[0]])
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
    date_formats: Sequence[str] = DEFAULT_DATE_FORMATS,
    threads: int | None = None,
) -> Processed:
    """All the rules on one upload's parsed rows (raw REQUIRED_COLUMNS strings, null for empty fields). `raw` is
    consumed (emptied once cleaned). `processing_date`: the run's timestamp (ISO-8601 UTC)."""
    (processed,) = process_uploads(raw, line_number, [(source_file, len(line_number))], processing_date, date_formats,
                                   threads)  # fmt: skip
    return processed


def process_uploads(
    raw: dict[str, pa.Array],
    line_number: pa.Array,
    uploads: Sequence[tuple[str, int]],
    processing_date: str,
    date_formats: Sequence[str] = DEFAULT_DATE_FORMATS,
    threads: int | None = None,
) -> list[Processed]:
    """All the rules on the rows of several uploads at once, one Processed per upload: `uploads` gives each upload's
    source file and number of rows, in the order its rows come in `raw` (the uploads' rows one after the other).
    Every rule over rows (exact duplicates, duplicate ids, running totals) stays within its upload, so an upload's
    result is what `process` gives it alone; a burst of tiny uploads costs one pass of Arrow calls, not one each."""
    n = len(line_number)
    sizes = np.array([rows for _, rows in uploads], np.int64)
    if int(sizes.sum()) != n:
        raise ValueError(f"uploads hold {int(sizes.sum())} rows, {n} given")
    upload = np.repeat(np.arange(len(uploads), dtype=np.int64), sizes) if len(uploads) > 1 else None
    rows_all = clean_in_parallel(raw, date_formats, threads)
    raw.clear()
    lines_all = pa.array(line_number, pa.int64())
    # Two independent pieces of work run side by side on a big upload (Arrow's and numpy's kernels run without the
    # GIL): the running-total order of every row while exact duplicates are found, then the running totals while
    # the kept rows' columns are gathered. The kept rows' order is every row's order without the dropped rows (a
    # sorted sequence stays sorted when rows are removed; the order has no ties: line numbers are unique).
    with ThreadPoolExecutor(1) as pool:
        beside = pool.submit if n >= PARALLEL_TAIL_ROWS else _now
        order_of = beside(
            running_total_order, rows_all.status, rows_all.date, rows_all.id_number, rows_all.id, lines_all, upload
        )
        groups = id_groups(rows_all.id, upload, rows_all.id_number)
        is_kept = exact_duplicates_kept(rows_all, line_number, groups, upload)
        kept = np.flatnonzero(is_kept)
        take = pa.array(kept)
        kept_upload = upload[kept] if upload is not None else None

        def kept_only(values: pa.Array) -> pa.Array:
            return values if len(kept) == n else pc.take(values, take)

        a = rows_all.amounts
        amounts = Amounts(a.units[kept], a.nanos[kept], a.valid[kept])
        status = kept_only(rows_all.status)
        order_all = order_of.result()
        position = np.cumsum(is_kept) - 1  # a kept row's index among the kept rows
        order = position[order_all[is_kept[order_all]]]
        total_text = beside(running_total_text, status, order, amounts, kept_upload)
        mask = rows_all.mask[kept]
        mask |= repeated(groups[kept]).astype(np.int64) << ISSUE_KINDS.index(DUPLICATE_ID)  # duplicate_ids
        rows = len(kept)
        kept_upload = kept_upload if kept_upload is not None else np.zeros(rows, np.int64)
        columns = {
            "id": kept_only(rows_all.id),
            "name": kept_only(rows_all.name),
            "email": kept_only(rows_all.email),
            "email_valid": kept_only(rows_all.email_valid),
            "date": kept_only(rows_all.date),
            "amount": kept_only(rows_all.amount_text),
            "amount_value": decimal_values(amounts.units, amounts.nanos, amounts.valid, output.AMOUNT_TYPE),
            "amount_category": amount_category(amounts),
            "status": status,
            "running_total_by_status": None,
            "data_quality_issues": issue_text(mask),
            "processing_date": constant(processing_date, rows),
            "source_file": pc.cast(
                pa.DictionaryArray.from_arrays(
                    pa.array(kept_upload.astype(np.int32)), pa.array([name for name, _ in uploads], pa.string())
                ),
                pa.string(),
            ),
            LINE_NUMBER: kept_only(lines_all),
        }
        columns["running_total_by_status"], columns["running_total_value"] = total_text.result()
    table = pa.table(columns)
    kept_per_upload = np.bincount(kept_upload, minlength=len(uploads))
    counts = issue_counts(mask, kept_upload, len(uploads))
    starts = np.r_[0, np.cumsum(kept_per_upload)]
    return [
        Processed(
            table.slice(int(starts[u]), int(kept_per_upload[u])),
            int(sizes[u] - kept_per_upload[u]),
            {kind: int(counts[u, k]) for k, kind in enumerate(ISSUE_KINDS) if counts[u, k]},
        )
        for u in range(len(uploads))
    ]


def running_total_text(
    status: pa.Array, order: np.ndarray, amounts: Amounts, upload: np.ndarray | None
) -> tuple[pa.Array, pa.Array]:
    """running_totals as the text the CSV carries and the decimals Parquet carries (its arguments bound when called:
    it may run on another thread while the caller goes on)."""
    totals = running_totals(status, order, amounts, upload)
    return decimal_text(*totals), decimal_values(*totals, output.TOTAL_TYPE)


# decimal_values' int64 path: units * NANOS + nanos stays within int64 (amounts below ~9.2 billion).
_INT64_UNITS = (2**63 - 1 - NANOS) // NANOS


def decimal_values(units: np.ndarray, nanos: np.ndarray, valid: np.ndarray, type_: pa.Decimal128Type) -> pa.Array:
    """Exact values (units + nanos, same sign) as decimals of `type_` (scale AMOUNT_SCALE), null where not `valid`:
    built from the scaled integers (128-bit two's complement, little-endian) when they fit int64, else read from
    their decimal_text (totals beyond int64, as Python integers)."""
    n = len(units)
    valid = np.asarray(valid, bool)
    if units.dtype == object or (n and not ((units < _INT64_UNITS) & (units > -_INT64_UNITS)).all()):
        return pc.cast(decimal_text(units, nanos, valid), type_)
    words = np.empty((n, 2), np.int64)
    words[:, 0] = np.where(valid, units * NANOS + nanos, 0)
    words[:, 1] = words[:, 0] >> 63  # the sign, extended
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(words)], null_count=int(n - valid.sum()))


class _Done:
    """A result already computed (what `pool.submit` gives, for work done on the spot)."""

    def __init__(self, value) -> None:
        self._value = value

    def result(self):
        return self._value


def _now(fn, *args) -> _Done:
    return _Done(fn(*args))


# Rows from which process_uploads runs two pieces of its work side by side (below, threads cost more than they save).
PARALLEL_TAIL_ROWS = 100_000
_ISSUE_BITS = (np.arange(1 << len(ISSUE_KINDS))[:, None] >> np.arange(len(ISSUE_KINDS))) & 1


def issue_counts(mask: np.ndarray, upload: np.ndarray, uploads: int) -> np.ndarray:
    """Rows with each issue, per upload: [upload, ISSUE_KINDS index] (one histogram of the issue masks per upload,
    then each mask's bits counted once)."""
    masks = 1 << len(ISSUE_KINDS)
    histogram = np.bincount(upload * masks + mask, minlength=uploads * masks).reshape(uploads, masks)
    return histogram @ _ISSUE_BITS


_ISSUE_TEXTS = pa.array(
    [ISSUE_SEPARATOR.join(k for i, k in enumerate(ISSUE_KINDS) if (m >> i) & 1) for m in range(1 << len(ISSUE_KINDS))],
    pa.string(),
)


def issue_text(mask: np.ndarray) -> pa.Array:
    """Every issue of the row in ISSUE_KINDS order, joined by ';'; '' when clean."""
    return pc.take(_ISSUE_TEXTS, pa.array(mask))


def constant(value: str, n: int) -> pa.Array:
    return pc.cast(pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value])), pa.string())
