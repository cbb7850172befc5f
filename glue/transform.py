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

_WHITESPACE = r"(?U)\s"  # Unicode whitespace, so a no-break space is trimmed too.


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
    """Trimmed of Unicode whitespace; null when nothing is left."""
    text = F.regexp_replace(col, rf"^{_WHITESPACE}+|{_WHITESPACE}+$", "")
    return F.when(text != "", text)


def clean_name(col: Column) -> Column:
    """Trimmed, inner whitespace collapsed to one space, proper case (initcap: 'o'brien' -> 'O'brien')."""
    return F.initcap(F.regexp_replace(_trimmed(col), f"{_WHITESPACE}+", " "))


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
    stripped = F.regexp_replace(text, r"(?U)[\p{Sc}\s]", "")
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
    dropped from its file). `processing_date` is the run's ISO-8601 timestamp, the same on every row.
    """
    raw_cols = [F.col(c) for c in REQUIRED_COLUMNS]
    cleaned = rows.select("source_file", LINE_NUMBER, *raw_cols, _trimmed(F.col("id")).alias("_id")).repartition(
        "source_file", "_id"
    )  # one shuffle serves both windows below (both partition by file and id)

    # Exact duplicates: same raw values in the same file; the first line is kept.
    exact = Window.partitionBy("source_file", "_id", *REQUIRED_COLUMNS)
    deduped = (
        cleaned.withColumn("_n", F.row_number().over(exact.orderBy(LINE_NUMBER)))
        .withColumn(DUPLICATES_REMOVED, F.count(F.lit(1)).over(exact) - 1)
        .filter(F.col("_n") == 1)
        .withColumn("_id_rows", F.count(F.lit(1)).over(Window.partitionBy("source_file", "_id")))
    )

    email = _trimmed(F.col("email"))
    date_text = _trimmed(F.col("date"))
    amount_text = _trimmed(F.col("amount"))
    amount_clean = clean_amount_text(amount_text)
    enriched = deduped.select(
        "source_file",
        LINE_NUMBER,
        DUPLICATES_REMOVED,
        F.col("_id").alias("id"),
        clean_name(F.col("name")).alias("name"),
        email.alias("email"),
        email_is_valid(email).alias("email_valid"),
        parse_date(date_text, date_formats).alias("date"),
        amount_clean.cast("double").alias("amount"),
        F.lower(_trimmed(F.col("status"))).alias("status"),
        (F.col("_id").isNotNull() & (F.col("_id_rows") > 1)).alias("_duplicate_id"),
        date_text.alias("_date_text"),
        amount_text.alias("_amount_text"),
    )

    issues = {
        MISSING_ID: F.col("id").isNull(),
        DUPLICATE_ID: F.col("_duplicate_id"),
        MISSING_NAME: F.col("name").isNull(),
        MISSING_EMAIL: F.col("email").isNull(),
        INVALID_EMAIL: F.col("email").isNotNull() & ~F.col("email_valid"),
        MISSING_DATE: F.col("_date_text").isNull(),
        INVALID_DATE: F.col("_date_text").isNotNull() & F.col("date").isNull(),
        MISSING_AMOUNT: F.col("_amount_text").isNull(),
        INVALID_AMOUNT: F.col("_amount_text").isNotNull() & F.col("amount").isNull(),
        MISSING_STATUS: F.col("status").isNull(),
    }
    issue_text = F.concat_ws(ISSUE_SEPARATOR, *[F.when(issues[kind], F.lit(kind)) for kind in ISSUE_KINDS])

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
    )


def output_rows(processed: DataFrame) -> DataFrame:
    """The processed CSV's columns, in the seed's order."""
    return processed.select(*OUTPUT_COLUMNS)
