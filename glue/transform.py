"""The ingest job's rules: DataFrames in, DataFrames out. No I/O, no Glue, no arguments.

- `parse_lines`: one CSV line per row (text) -> the six raw string columns, malformed lines marked.
- `rejected_rows`: the malformed lines as rejected output (source_file, line_number, reason, raw_line).
- `transform`: parsed rows -> cleaned and enriched rows (OUTPUT_COLUMNS plus two helper columns).

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
# Helper columns `transform` adds next to OUTPUT_COLUMNS (not written to the processed CSV).
LINE_NUMBER = "line_number"
DUPLICATES_REMOVED = "duplicates_removed"
ISSUE_MASK = "issue_mask"

DEFAULT_DATE_FORMATS = ("dd-MM-yyyy", "yyyy-MM-dd")
# Local part, "@", dot-separated domain labels, alphabetic top-level domain of 2+ letters.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
# After currency symbols and spaces are gone: optional sign, digits with optional ',' thousands groups, decimals.
AMOUNT_PATTERN = r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$"
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
_WHITESPACE_CHARS = " \t\r\n\u000b\f\u00a0\u2007\u202f\u3000"
_WHITESPACE_RUN = "[\\s\u00a0\u2007\u202f\u3000]+"


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
    unquoted = F.regexp_replace(raw, r'"([^"]|"")*"?', "")
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


def _trimmed(col: Column) -> Column:
    """Trimmed of whitespace (incl. no-break spaces); null when nothing is left."""
    text = F.btrim(col, F.lit(_WHITESPACE_CHARS))
    return F.when(text != "", text)


def clean_name(col: Column) -> Column:
    """Trimmed, inner whitespace collapsed to one space, proper case (initcap: 'o'brien' -> 'O'brien')."""
    return F.initcap(F.regexp_replace(_trimmed(col), _WHITESPACE_RUN, " "))


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
    return regex + "$", tuple(order)


def parse_date(text: Column, formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> Column:
    """The first format (in list order) the text matches and that names a real calendar day; else null."""
    candidates = []
    for pattern in formats:
        regex, order = date_format_regex(pattern)
        part = {unit: F.regexp_extract(text, regex, i + 1).cast("int") for i, unit in enumerate(order)}
        y, m, d = part["y"], part["m"], part["d"]
        real_day = m.between(1, 12) & (d >= 1) & (d <= F.dayofmonth(F.last_day(F.make_date(y, m, F.lit(1)))))
        # make_date is only reached for a real day, so ANSI mode cannot make it throw.
        candidates.append(F.when(text.rlike(regex), F.when(real_day, F.make_date(y, m, d))))
    return F.coalesce(*candidates)


def clean_amount_text(text: Column) -> Column:
    """Currency symbols and spaces removed; null unless what is left is a signed number (',' thousands only)."""
    stripped = F.regexp_replace(text, "[\\p{Sc}\\s\u00a0\u2007\u202f\u3000]", "")
    return F.when(stripped.rlike(AMOUNT_PATTERN), F.regexp_replace(stripped, ",", ""))


def amount_category(amount: Column) -> Column:
    """low < 100 <= medium < 200 <= high; null when there is no amount."""
    return (
        F.when(amount.isNull(), F.lit(None).cast("string"))
        .when(amount < LOW_MEDIUM_BOUNDARY, "low")
        .when(amount < MEDIUM_HIGH_BOUNDARY, "medium")
        .otherwise("high")
    )


def _id_as_number(id_col: Column) -> Column:
    return F.when(id_col.rlike(r"^-?\d{1,18}$"), id_col.cast("long"))


def transform(rows: DataFrame, processing_date: str, date_formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> DataFrame:
    """Cleans and enriches parsed rows of one or more files; each file's rows depend on that file only.

    `rows`: source_file, line_number and the REQUIRED_COLUMNS as raw strings.
    Returns OUTPUT_COLUMNS + `line_number` (of the kept row) + `duplicates_removed` (exact copies of the row
    dropped from its file) + `issue_mask` (bit i set when ISSUE_KINDS[i] applies). `processing_date` is the run's
    ISO-8601 timestamp, the same on every row.

    Plan: one shuffle by (file, status) serves the exact-duplicate aggregation and the running-total window (equal
    rows share a status); duplicate ids come from a narrow aggregate, broadcast back.
    """
    status = F.lower(_trimmed(F.col("status")))
    ident = _trimmed(F.col("id"))
    keyed = rows.select("source_file", LINE_NUMBER, *REQUIRED_COLUMNS, status.alias("_status"), ident.alias("_id"))

    # Ids carried by two or more different rows of a file (a row hash differing is enough to know they differ).
    row_hash = F.xxhash64(*[F.coalesce(F.col(c), F.lit("\u0000")) for c in REQUIRED_COLUMNS])
    duplicate_ids = (
        keyed.filter(F.col("_id").isNotNull())
        .groupBy("source_file", "_id")
        .agg((F.min(row_hash) != F.max(row_hash)).alias("_duplicate_id"))
        .filter("_duplicate_id")
    )

    # Exact duplicates: same raw values in the same file; the first line is kept, the others counted.
    deduped = (
        keyed.repartition("source_file", "_status")
        .groupBy("source_file", "_status", "_id", *REQUIRED_COLUMNS)
        .agg(F.min(LINE_NUMBER).alias(LINE_NUMBER), (F.count(F.lit(1)) - 1).alias(DUPLICATES_REMOVED))
        .join(F.broadcast(duplicate_ids), ["source_file", "_id"], "left")
    )

    email = _trimmed(F.col("email"))
    date_text = _trimmed(F.col("date"))
    amount_text = _trimmed(F.col("amount"))
    enriched = deduped.select(
        "source_file",
        LINE_NUMBER,
        DUPLICATES_REMOVED,
        F.col("_id").alias("id"),
        clean_name(F.col("name")).alias("name"),
        email.alias("email"),
        email_is_valid(email).alias("email_valid"),
        parse_date(date_text, date_formats).alias("date"),
        clean_amount_text(amount_text).cast("double").alias("amount"),
        F.col("_status").alias("status"),
        F.coalesce(F.col("_duplicate_id"), F.lit(False)).alias("_duplicate_id"),
        date_text.isNull().alias("_no_date"),
        amount_text.isNull().alias("_no_amount"),
    )

    issues = {
        MISSING_ID: F.col("id").isNull(),
        DUPLICATE_ID: F.col("_duplicate_id"),
        MISSING_NAME: F.col("name").isNull(),
        MISSING_EMAIL: F.col("email").isNull(),
        INVALID_EMAIL: F.col("email").isNotNull() & ~F.col("email_valid"),
        MISSING_DATE: F.col("_no_date"),
        INVALID_DATE: ~F.col("_no_date") & F.col("date").isNull(),
        MISSING_AMOUNT: F.col("_no_amount"),
        INVALID_AMOUNT: ~F.col("_no_amount") & F.col("amount").isNull(),
        MISSING_STATUS: F.col("status").isNull(),
    }
    issue_text = F.concat_ws(ISSUE_SEPARATOR, *[F.when(issues[kind], F.lit(kind)) for kind in ISSUE_KINDS])
    issue_mask = reduce(
        lambda acc, bit: acc + bit,  # distinct powers of two: the sum is the bitwise or
        [F.when(issues[kind], F.lit(1 << i)).otherwise(F.lit(0)) for i, kind in enumerate(ISSUE_KINDS)],
    )

    # Within (file, status), by date then id (numeric ids numerically) then line: a total, batching-free order.
    running = (
        Window.partitionBy("source_file", "status")
        .orderBy(
            F.col("date").asc_nulls_last(),
            _id_as_number(F.col("id")).asc_nulls_last(),
            F.col("id").asc_nulls_last(),
            F.col(LINE_NUMBER).asc(),
        )
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return enriched.select(
        "id",
        "name",
        "email",
        "email_valid",
        "date",
        "amount",
        amount_category(F.col("amount")).alias("amount_category"),
        "status",
        # Rounded so float noise (0.1 + 0.2) does not reach the output.
        F.round(F.sum("amount").over(running), 9).alias("running_total_by_status"),
        issue_text.alias("data_quality_issues"),
        F.lit(processing_date).alias("processing_date"),
        "source_file",
        LINE_NUMBER,
        DUPLICATES_REMOVED,
        issue_mask.alias(ISSUE_MASK),
    )


def output_rows(processed: DataFrame) -> DataFrame:
    """The processed CSV's columns, in the seed's order."""
    return processed.select(*OUTPUT_COLUMNS)
