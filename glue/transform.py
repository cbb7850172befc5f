"""The ingest job's rules: DataFrames in, DataFrames out. No I/O, no Glue, no arguments.

- `parse_lines`: one CSV line per row (text) -> the six raw string columns, malformed lines marked.
- `rejected_rows`: the malformed lines as rejected output (source_file, line_number, reason, raw_line).
- `clean`: row-local rules (cleaned values, issue bitmask, row hashes); no shuffle.
- `duplicate_summary`: per (file, id) distinct rows, exact duplicates and issue counts (stats, duplicate ids).
- `enrich`: duplicates dropped, duplicate ids flagged, running totals, issue text -> OUTPUT_COLUMNS + line_number.
- `transform`: clean + duplicate_summary + enrich, for one call on parsed rows.

Every rule is written to give the same answer with ANSI mode on or off (nothing is cast or parsed unless a
pattern has already said it will succeed), and a file's rows never depend on the other files in the DataFrame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

REQUIRED_COLUMNS = ("id", "name", "email", "date", "amount", "status")
OUTPUT_COLUMNS = (
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
# Helper columns next to OUTPUT_COLUMNS (not written to the processed CSV).
LINE_NUMBER = "line_number"
ISSUE_MASK = "issue_mask"
ROW_HASH = "_row_hash"
ROW_HASH2 = "_row_hash2"
# The amount as an exact decimal: running totals are summed from it, so they carry no float noise.
AMOUNT_EXACT = "_amount_exact"
AMOUNT_EXACT_TYPE = "decimal(38,9)"
# What `clean` adds in place of the raw REQUIRED_COLUMNS.
CLEAN_COLUMNS = (ROW_HASH, ROW_HASH2, *REQUIRED_COLUMNS, "email_valid", AMOUNT_EXACT, ISSUE_MASK)

DEFAULT_DATE_FORMATS = ("dd-MM-yyyy", "yyyy-MM-dd")
# The patterns are read the same by Java (Spark) and RE2 (the Arrow engine): ASCII classes only, and \z for the
# end (Java's $ would also match before a final line terminator such as U+2028).
# Local part, "@", dot-separated domain labels, alphabetic top-level domain of 2+ letters.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\z"
# After currency symbols and spaces are gone: optional sign, up to 15 integer digits (optionally in ',' thousands
# groups), decimals. Larger amounts are not amounts but mistakes (an id or a phone number in the wrong column).
AMOUNT_PATTERN = r"^[+-]?(\d{1,3}(,\d{3}){1,4}|\d{1,15})(\.\d+)?\z|^[+-]?\.\d+\z"
# Removed from amounts before they are read: currency symbols and spaces (incl. no-break spaces).
CURRENCY_AND_SPACES = "$€£¥₹₩₽¢" + " \t\u00a0\u2007\u202f\u3000"
# Ids that are whole numbers sort numerically (before the others, which sort as text).
ID_NUMBER_PATTERN = r"^-?\d{1,18}\z"
LOW_MEDIUM_BOUNDARY = 100.0
MEDIUM_HIGH_BOUNDARY = 200.0

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

CORRUPT_RECORD = "_corrupt_record"
# RFC 4180 quoting ("" inside quotes); empty fields come out as null.
CSV_OPTIONS = {
    "sep": ",",
    "quote": '"',
    "escape": '"',
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT_RECORD,
}

# Whitespace trimmed and collapsed: ASCII plus the no-break and ideographic spaces seen in pasted data.
WHITESPACE_CHARS = " \t\r\n\u000b\f\u00a0\u2007\u202f\u3000"
WHITESPACE_RUN = f"[{WHITESPACE_CHARS}]+"


def field_schema(field_count: int) -> str:
    """DDL of a CSV line with `field_count` string fields and the corrupt-record column."""
    fields = [f"`_c{i}` STRING" for i in range(field_count)]
    return ", ".join([*fields, f"`{CORRUPT_RECORD}` STRING"])


def parse_lines(lines: DataFrame, field_count: int, positions: dict[str, int]) -> DataFrame:
    """Parses `value` (one CSV line) into the REQUIRED_COLUMNS (raw strings, by header position).

    A line whose field count differs from the header's gets `_corrupt_record` = the raw line; others get null.
    All other columns of `lines` are kept; `value` is dropped.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    if missing:
        raise ValueError(f"positions lack column(s): {', '.join(missing)}")
    parsed = F.from_csv(F.col("value"), field_schema(field_count), CSV_OPTIONS)
    keep = [c for c in lines.columns if c != "value"]
    return lines.select(*keep, parsed.alias("_p")).select(
        *keep,
        *[F.col(f"_p._c{positions[c]}").alias(c) for c in REQUIRED_COLUMNS],
        F.col(f"_p.{CORRUPT_RECORD}").alias(CORRUPT_RECORD),
    )


def count_fields(raw: Column) -> Column:
    """Number of comma-separated fields of a raw line, quoted fields counted as one."""
    # Unrolled ("[^"]*" runs, then doubled quotes): Java's regex engine recurses once per repetition of a group, and
    # the plain form ("([^"]|"")*) overflowed its stack on a quoted stretch of a few thousand characters.
    unquoted = F.regexp_replace(raw, r'"[^"]*(?:""[^"]*)*"?', "")
    return F.size(F.split(unquoted, ",", -1))


def rejected_rows(parsed: DataFrame, field_count: int) -> DataFrame:
    """Rows of `parsed` (with source_file, line_number) that did not parse, as REJECTED_COLUMNS."""
    raw = F.col(CORRUPT_RECORD)
    found = count_fields(raw)
    reason = F.when(
        found != F.lit(field_count),
        F.format_string(f"expected {field_count} fields as in the header, found %d", found),
    ).otherwise(F.lit("malformed CSV line (unbalanced quotes)"))
    return parsed.filter(raw.isNotNull()).select(
        "source_file", F.col(LINE_NUMBER).cast("long").alias(LINE_NUMBER), reason.alias("reason"), raw.alias("raw_line")
    )


def email_is_valid(email: Column) -> Column:
    return F.coalesce(email.rlike(EMAIL_PATTERN), F.lit(False))


_DATE_TOKENS = {
    "yyyy": (r"(\d{4})", "y"),
    "MM": (r"(\d{2})", "m"),
    "dd": (r"(\d{2})", "d"),
    "M": (r"(\d{1,2})", "m"),
    "d": (r"(\d{1,2})", "d"),
}


def date_format_regex(pattern: str) -> tuple[str, tuple[str, ...]]:
    """'dd-MM-yyyy' -> (r'^(\\d{2})\\-(\\d{2})\\-(\\d{4})$', ('d', 'm', 'y')). Supports yyyy, MM, M, dd, d."""
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


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _date_parts(column: str, pattern: str) -> tuple[str, dict[str, Column]]:
    """The pattern's regex and the year/month/day of `column` as ints (substrings when every token is fixed-width).

    try_cast: ANSI mode cannot make a part throw. `clean` evaluates the parts only where the pattern matched: a
    try_cast that fails costs an exception per row (seconds per million rows).
    """
    regex, order = date_format_regex(pattern)
    tokens = re.findall(r"yyyy|MM|dd|M|d|.", pattern)
    if all(t not in ("M", "d") for t in tokens):
        parts, position = {}, 1
        for token in tokens:
            if token in _DATE_TOKENS:
                parts[_DATE_TOKENS[token][1]] = F.expr(
                    f"try_cast(substring(`{column}`, {position}, {len(token)}) AS INT)"
                )
            position += len(token)
        return regex, parts
    return regex, {
        unit: F.expr(f"try_cast(regexp_extract(`{column}`, {_sql_string(regex)}, {i + 1}) AS INT)")
        for i, unit in enumerate(order)
    }


def _days_in_month(y: Column, m: Column) -> Column:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    return F.when(m == 2, F.when(leap, 29).otherwise(28)).when(m.isin(4, 6, 9, 11), 30).otherwise(31)


def amount_category(amount: Column) -> Column:
    """low < 100 <= medium < 200 <= high; null when there is no amount."""
    return (
        F.when(amount.isNull(), F.lit(None).cast("string"))
        .when(amount < LOW_MEDIUM_BOUNDARY, "low")
        .when(amount < MEDIUM_HIGH_BOUNDARY, "medium")
        .otherwise("high")
    )


def _id_as_number(id_col: Column) -> Column:
    return F.when(id_col.rlike(ID_NUMBER_PATTERN), id_col.cast("long"))


def _row_hashes(cols: Sequence[str]) -> tuple[Column, Column]:
    """Two independent hashes of the raw values (96 bits together): equal rows are found without comparing them.
    A null is not any string (Spark's hashes skip nulls, so each value's null flag is hashed too)."""
    values = [F.coalesce(F.col(c), F.lit("")) for c in cols] + [F.col(c).isNull() for c in cols]
    return F.xxhash64(*values), F.hash(*values)


def clean(rows: DataFrame, date_formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> DataFrame:
    """Row-local rules (no shuffle): the REQUIRED_COLUMNS are replaced by their cleaned values, and each row gets
    `issue_mask` (bit i set when ISSUE_KINDS[i] applies; duplicate_id is not row-local and is added by `enrich`)
    and two hashes of its raw values. Other columns of `rows` are kept.

    Written as stages of projections: a value used many times (a trimmed text, a date part) is computed once in
    one stage and read as a column by the next (Spark does not collapse stages that would repeat such work).
    """
    keep = [c for c in rows.columns if c not in REQUIRED_COLUMNS]
    row_hash, row_hash2 = _row_hashes(REQUIRED_COLUMNS)
    carried = [*keep, ROW_HASH, ROW_HASH2]
    trimmed = rows.select(
        *keep,
        row_hash.alias(ROW_HASH),
        row_hash2.alias(ROW_HASH2),
        *[F.btrim(F.col(c), F.lit(WHITESPACE_CHARS)).alias(f"_t_{c}") for c in REQUIRED_COLUMNS],
    ).select(*carried, *[F.when(F.col(f"_t_{c}") != "", F.col(f"_t_{c}")).alias(f"_{c}") for c in REQUIRED_COLUMNS])

    date_matches, date_parts, date_candidates = [], [], []
    for i, pattern in enumerate(date_formats):
        regex, part = _date_parts("_date", pattern)
        names = {"y": f"_dy{i}", "m": f"_dmo{i}", "d": f"_dd{i}"}
        date_matches.append(F.col("_date").rlike(regex).alias(f"_dmatch{i}"))
        # Only where the pattern matched (see _date_parts), in a stage of their own after the match.
        date_parts += [F.when(F.col(f"_dmatch{i}"), part[u]).alias(names[u]) for u in "ymd"]
        y, m, d = (F.col(names[u]) for u in "ymd")
        real_day = m.between(1, 12) & (d >= 1) & (d <= _days_in_month(y, m))
        # make_date is only reached for a real day, so ANSI mode cannot make it throw.
        date_candidates.append(F.when(F.col(f"_dmatch{i}") & real_day, F.make_date(y, m, d)))
    pieces = trimmed.select(
        *carried,
        "_id",
        "_email",
        "_date",
        "_amount",
        F.initcap(F.regexp_replace(F.col("_name"), WHITESPACE_RUN, " ")).alias("name"),
        email_is_valid(F.col("_email")).alias("email_valid"),
        F.lower(F.col("_status")).alias("status"),
        F.translate(F.col("_amount"), CURRENCY_AND_SPACES, "").alias("_amount_s"),
        *date_matches,
    )
    pieces = pieces.select(*pieces.columns, *date_parts)
    amount = F.when(F.col("_amount_s").rlike(AMOUNT_PATTERN), F.translate(F.col("_amount_s"), ",", ""))
    # Cannot fail (at most 15 integer digits); more than 9 decimals are rounded half up.
    amount_exact = amount.cast(AMOUNT_EXACT_TYPE)
    cleaned = pieces.select(
        *carried,
        F.col("_id").alias("id"),
        "name",
        F.col("_email").alias("email"),
        "email_valid",
        F.coalesce(*date_candidates).alias("date"),
        amount.cast("double").alias("amount"),
        "status",
        amount_exact.alias(AMOUNT_EXACT),
        F.col("_date").isNull().alias("_no_date"),
        F.col("_amount").isNull().alias("_no_amount"),
    )
    issues = {
        MISSING_ID: F.col("id").isNull(),
        MISSING_NAME: F.col("name").isNull(),
        MISSING_EMAIL: F.col("email").isNull(),
        INVALID_EMAIL: F.col("email").isNotNull() & ~F.col("email_valid"),
        MISSING_DATE: F.col("_no_date"),
        INVALID_DATE: ~F.col("_no_date") & F.col("date").isNull(),
        MISSING_AMOUNT: F.col("_no_amount"),
        INVALID_AMOUNT: ~F.col("_no_amount") & F.col("amount").isNull(),
        MISSING_STATUS: F.col("status").isNull(),
    }
    mask = reduce(
        lambda acc, bit: acc + bit,  # distinct powers of two: the sum is the bitwise or
        [F.when(issues[kind], F.lit(1 << ISSUE_KINDS.index(kind))).otherwise(F.lit(0)) for kind in issues],
    )
    return cleaned.select(*[c for c in cleaned.columns if c not in ("_no_date", "_no_amount")], mask.alias(ISSUE_MASK))


def has_issue(mask: Column, kind: str) -> Column:
    return mask.bitwiseAND(1 << ISSUE_KINDS.index(kind)) != 0


def duplicate_summary(cleaned: DataFrame) -> DataFrame:
    """Per (source_file, id) of cleaned rows: `rows` (distinct rows kept), `duplicates` (exact copies removed),
    and per row-local issue kind the number of kept rows that have it. One narrow shuffle; the stats and the
    duplicate-id flags both come from it."""
    per_row = (
        cleaned.repartition("source_file", "id")
        .groupBy("source_file", "id", ROW_HASH, ROW_HASH2)
        .agg(F.count(F.lit(1)).alias("_copies"), F.max(ISSUE_MASK).alias("_mask"))
    )
    return per_row.groupBy("source_file", "id").agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("_copies") - 1).alias("duplicates"),
        *[
            F.sum(has_issue(F.col("_mask"), kind).cast("long")).alias(kind)
            for kind in ISSUE_KINDS
            if kind != DUPLICATE_ID
        ],
    )


def enrich(cleaned: DataFrame, summary: DataFrame, processing_date: str) -> DataFrame:
    """Exact duplicates removed, duplicate ids flagged, running totals, issues text: OUTPUT_COLUMNS + line_number.

    One shuffle by (file, status) serves all of it. Exact duplicates share status, date and id, so sorted by those
    and then by their hashes the copies are neighbours, and the later copies (by line) are dropped by comparing
    hashes. The running total then sums in its own order: date, id, line number.
    """
    duplicate_ids = summary.filter(F.col("id").isNotNull() & (F.col("rows") > 1)).select(
        "source_file", "id", F.lit(True).alias("_duplicate_id")
    )
    rows = cleaned.join(F.broadcast(duplicate_ids), ["source_file", "id"], "left").select(
        "*", F.xxhash64("source_file", "status").alias("_group"), _id_as_number(F.col("id")).alias("_id_number")
    )
    group = Window.partitionBy("_group", "source_file", "status")
    by_value = [F.col("date").asc_nulls_last(), F.col("_id_number").asc_nulls_last(), F.col("id").asc_nulls_last()]
    copies_adjacent = group.orderBy(*by_value, F.col(ROW_HASH), F.col(ROW_HASH2), F.col(LINE_NUMBER))
    same_as_previous = (F.lag(ROW_HASH).over(copies_adjacent) == F.col(ROW_HASH)) & (
        F.lag(ROW_HASH2).over(copies_adjacent) == F.col(ROW_HASH2)
    )
    kept = rows.withColumn("_copy", F.coalesce(same_as_previous, F.lit(False))).filter(~F.col("_copy"))

    mask = F.col(ISSUE_MASK)
    duplicate_id = F.coalesce(F.col("_duplicate_id"), F.lit(False))
    flags = [duplicate_id if kind == DUPLICATE_ID else has_issue(mask, kind) for kind in ISSUE_KINDS]
    issue_text = F.concat_ws(
        ISSUE_SEPARATOR, *[F.when(flag, F.lit(kind)) for flag, kind in zip(flags, ISSUE_KINDS, strict=True)]
    )
    # Within (file, status): by date, then id (whole-number ids numerically), then line number.
    running = group.orderBy(*by_value, F.col(LINE_NUMBER)).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return kept.select(
        "id",
        "name",
        "email",
        "email_valid",
        "date",
        "amount",
        amount_category(F.col("amount")).alias("amount_category"),
        "status",
        # Summed as exact decimals: no float noise (0.1 + 0.2 is 0.3).
        F.sum(AMOUNT_EXACT).over(running).alias("running_total_by_status"),
        issue_text.alias("data_quality_issues"),
        F.lit(processing_date).alias("processing_date"),
        "source_file",
        LINE_NUMBER,
    )


def transform(rows: DataFrame, processing_date: str, date_formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> DataFrame:
    """All the rules on parsed rows of one or more files; each file's rows depend on that file only.

    `rows`: source_file, line_number and the REQUIRED_COLUMNS as raw strings. Returns OUTPUT_COLUMNS +
    line_number. `processing_date` is the run's ISO-8601 timestamp, the same on every row.
    """
    cleaned = clean(rows, date_formats)
    return enrich(cleaned, duplicate_summary(cleaned), processing_date)


def decimal_text(value: Column) -> Column:
    """An exact decimal as plain text with at least one decimal digit: 1234.5, 150.0, 0.000000001 (never 1E-9)."""
    plain = F.translate(F.format_number(value, 9), ",", "")  # exact for a decimal, never an exponent
    return F.regexp_replace(F.regexp_replace(plain, "0+$", ""), "\\.$", ".0")


def output_rows(processed: DataFrame, *extra: str) -> DataFrame:
    """The processed CSV's columns, in the seed's order, as they are written (then the `extra` columns as they are)."""
    running = "running_total_by_status"
    return processed.select(*[decimal_text(F.col(c)).alias(c) if c == running else c for c in OUTPUT_COLUMNS], *extra)
