"""The Arrow engine's CSV output against Spark's: the same typed rows must give the same bytes (arrow_csv.py).

Every expected file here is written by Spark itself (ingest.write_csv, the job's options, one part file), so a
change in Spark, Java or pyarrow that moves a byte fails a test.
"""

from __future__ import annotations

import datetime
import io

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

import storage
from arrow_csv import csv_bytes, java_double_text, java_double_text_scalar, write_csv
from ingest import write_csv as spark_write_csv

SPARK_TYPES = {
    pa.string(): "string",
    pa.bool_(): "boolean",
    pa.int8(): "tinyint",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.date32(): "date",
    pa.float64(): "double",
}

# Every ASCII char and some beyond, at the start, the end, the middle, alone, and behind blanks.
CHARS = [chr(c) for c in range(128)] + ["\x85", "\xa0", "\u2028", "\u3000", "\ufeff", "é", "😀"]
NASTY_STRINGS = [
    form
    for c in CHARS
    for form in (c + "a", "a" + c, "a" + c + "b", c, c + c + "a" + c + c, " " + c + "a", "a" + c + " ")
] + [
    None,
    "",
    " ",
    "#",
    "#x",
    " #x",
    "a,b",
    'say "hi"',
    '"',
    '""',
    '"quoted"',
    ' "lead',
    "line\nbreak",
    "cr\rhere",
    "crlf\r\nx",
    "\na",
    "a\n",
    " \n a \n ",
    "\r\na,b\r\n",
    "back\\slash",
    "\\",
    '\\"',
    "a,b\\",
    "=1+2",
    "'single'",
    "Ann Lee",
    "x" * 5000,
    "é ünï ß 中文 😀",
]

EDGE_DOUBLES = [
    *(0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 150.0, 1234.5, -20.0, 0.001, -0.001, 1e-4, 1e-5, 1e7, -1e7, 1e21, 1e22),
    *(1e23, 2e23, 1.2345678912345679e8, 9999999.999999998, 10000000.000000002, 9.999999999999999e-4, 0.1 + 0.2),
    *(5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308, -1.7976931348623157e308),
    *(2.0**53, 2.0**53 + 2, 2.0**60, 2.0**63, 2.0**64, 2.0**-24, 123456789012345678.0, 1 / 3),
    *(1e10, 1e15, 1e16, 1e17, 4.35, 0.07, 1e-7, 1.5e-7, 1e300, 1e-300, 1e-6, 9.99e-7, 99999999999.5, 1e-3 * 0.999999),
    *(float("nan"), float("inf"), float("-inf")),
    # A short decimal exactly half an ulp above: Java's big-integer path takes it ("8.04035376447488E26"), its
    # 64-bit path does not (2e23 above); and values whose 64-bit arithmetic in Java overflows ([2^84, 2^85)).
    *(8.040353764474879e26, 1.99319047110656e27, 1.574891794989056e27, 1.6871620387799039e27, 2.295251762937856e27),
    *(2.7751423642943403e25, 3.6062245936280774e25, 2.6864782736105086e25, 3.8061052207613385e25),
    *(p * s for k in range(-12, 24) for p in [float(f"1e{k}")] for s in (1, -1)),
    *(np.nextafter(float(f"1e{k}"), to) for k in range(-12, 24) for to in (0.0, np.inf)),
    *(2.0**k for k in range(-60, 70, 3)),
    *(np.nextafter(2.0**k, to) for k in range(-60, 70, 7) for to in (0.0, np.inf)),
]


def spark_frame(spark, table: pa.Table):
    """`table` as a Spark DataFrame with the same column names and types, rows in order."""
    schema = ", ".join(f"`{f.name}` {SPARK_TYPES[f.type]}" for f in table.schema)
    rows = [tuple(r.values()) for r in table.to_pylist()]
    return spark.createDataFrame(rows, schema)


def spark_file(df, tmp_path) -> bytes:
    """What the job's Spark writer writes for `df` (one part file)."""
    out = tmp_path / "spark"
    spark_write_csv(df.coalesce(1), storage.local_uri(out))
    (part,) = out.glob("part-*")
    return part.read_bytes()


def assert_same_bytes(spark_bytes: bytes, arrow_bytes: bytes) -> None:
    if spark_bytes != arrow_bytes:
        ours, theirs = arrow_bytes.split(b"\n"), spark_bytes.split(b"\n")
        first = [(i, s, a) for i, (s, a) in enumerate(zip(theirs, ours, strict=False)) if s != a][:5]
        pytest.fail(
            f"{len(theirs)} Spark lines, {len(ours)} Arrow lines; first differences (line, Spark, Arrow): {first}"
        )


def doubles_table(values) -> pa.Table:
    """An index column keeps every line non-empty (a one-column file drops null rows) and the order visible."""
    return pa.table({"i": pa.array(np.arange(len(values)), pa.int64()), "v": pa.array(values, pa.float64())})


def test_strings_are_trimmed_quoted_and_escaped_as_spark_does(spark, tmp_path):
    table = pa.table(
        {
            "first": pa.array(NASTY_STRINGS, pa.string()),  # '#' is only quoted in the first column
            "second": pa.array(NASTY_STRINGS, pa.string()),
            "n": pa.array(range(len(NASTY_STRINGS)), pa.int32()),
        }
    )
    expected = spark_file(spark_frame(spark, table), tmp_path)
    assert_same_bytes(expected, csv_bytes(table))
    # Any chunking, through both ways of joining a chunk (with and without quoted cells), gives the same file.
    for rows in (1, 7, 100):
        sink = io.BytesIO()
        write_csv(table, sink, chunk_rows=rows)
        assert_same_bytes(expected, sink.getvalue())
    large = pa.schema([pa.field(f.name, pa.large_string()) if f.type == pa.string() else f for f in table.schema])
    assert_same_bytes(expected, csv_bytes(table.cast(large)))


def test_every_column_type_with_nulls_and_extremes(spark, tmp_path):
    dates = [datetime.date(1, 1, 1), datetime.date(999, 12, 31), datetime.date(1582, 10, 4)]
    dates += [datetime.date(1582, 10, 15), datetime.date(1900, 2, 28), datetime.date(2024, 2, 29)]
    dates += [datetime.date(2026, 4, 1), datetime.date(9999, 12, 31), None]
    n = len(dates)
    table = pa.table(
        {
            "id": pa.array([2**63 - 1, -(2**63), 0, None, 1, -1, 42, 10**18, 7], pa.int64()),
            "name": pa.array(["Ann", None, "", " Bo ", "a,b", "#c", "x", "é", '"'], pa.string()),
            "flag": pa.array([True, False, None, True, False, True, None, False, True], pa.bool_()),
            "date": pa.array(dates, pa.date32()),
            "amount": pa.array([150.0, -20.0, None, 1234.5, 1e7, 0.001, float("nan"), -0.0, 1.2345678912345679e8]),
            "count": pa.array([2**31 - 1, -(2**31), None, 0, 1, -1, 5, 6, 7], pa.int32()),
            "small": pa.array([127, -128, None, 0, 1, 2, 3, 4, 5], pa.int8()),
            "short": pa.array([32767, -32768, None, 0, 1, 2, 3, 4, 5], pa.int16()),
            "last": pa.array([None] * (n - 1) + ["z"], pa.string()),
        }
    )
    assert_same_bytes(spark_file(spark_frame(spark, table), tmp_path), csv_bytes(table))


def test_dates_past_four_digit_years(spark, tmp_path):
    days = [-719528, -719893, -4371953, -4371952, 2932896, 2932897, 3000000, -800000, 0, -1, 19448, -141428]
    df = spark.createDataFrame([(i, d) for i, d in enumerate(days)], "i long, d int").select(
        "i", F.date_add(F.lit("1970-01-01").cast("date"), F.col("d")).alias("d")
    )
    table = pa.table({"i": pa.array(range(len(days)), pa.int64()), "d": pa.array(days, pa.int32()).cast(pa.date32())})
    assert_same_bytes(spark_file(df, tmp_path), csv_bytes(table))


def test_header_names_are_written_like_values(spark, tmp_path):
    table = pa.table({"#id": ["1"], " padded ": ["2"], "a,b": ["3"], 'q"t': ["4"], "é": ["5"], "#h": ["6"]})
    assert_same_bytes(spark_file(spark_frame(spark, table), tmp_path), csv_bytes(table))


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"s": pa.array([None, "", "  ", "a", "\n", "#", " x ", None], pa.string())}),
        pa.table({"v": pa.array([None, 1.5, None, float("nan"), -0.0], pa.float64())}),
        pa.table({" ": pa.array(["", None, "b"], pa.string())}),
        pa.table({"s": pa.array([], pa.string()), "v": pa.array([], pa.float64())}),
    ],
    ids=["one-string-column", "one-double-column", "blank-header", "no-rows"],
)
def test_lines_that_come_out_empty_are_not_written(spark, tmp_path, table):
    assert_same_bytes(spark_file(spark_frame(spark, table), tmp_path), csv_bytes(table))


def test_double_text_of_edge_values_is_the_jvms(spark, tmp_path):
    table = doubles_table(EDGE_DOUBLES)
    expected = spark_file(spark_frame(spark, table), tmp_path)
    assert_same_bytes(expected, csv_bytes(table))
    # The scalar (Java's own algorithm, also used for the rows without shortest digits) on every value.
    jvm = [line.split(",", 1)[1] for line in expected.decode().splitlines()[1:]]
    assert [java_double_text_scalar(float(v)) for v in EDGE_DOUBLES] == jvm


def test_double_text_of_a_random_sample_is_the_jvms(spark, tmp_path):
    rng = np.random.default_rng(20260401)
    n = 4000
    cents = rng.integers(-5000, 500001, n) / 100  # amounts
    digits = rng.integers(1, 18, n)  # 1..17 significant digits, 1e-5..1e12
    exponents = rng.integers(-5, 13, n) - digits
    sig = [float(f"{rng.integers(10 ** (d - 1), 10**d)}e{e}") for d, e in zip(digits, exponents, strict=True)]
    spread = 10.0 ** rng.uniform(-320, 308, n) * rng.choice([-1.0, 1.0], n)  # every decade
    beyond = rng.uniform(2.0**50, 2.0**90, n // 4)  # where Java's digits are not the shortest
    subnormal = rng.integers(1, 2**52, n // 4, dtype=np.int64).view(np.float64)
    powers = np.ldexp(1.0, np.arange(-1074, 1024, 5))
    bits = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64).view(np.float64)  # any double, NaN payloads too
    values = np.concatenate([cents, sig, spread, beyond, subnormal, powers, bits])
    table = doubles_table(values)
    assert_same_bytes(spark_file(spark_frame(spark, table), tmp_path), csv_bytes(table))


def test_running_totals_rounded_by_spark(spark, tmp_path):
    rng = np.random.default_rng(7)
    sums = np.cumsum(rng.integers(-5000, 500001, 20000) / 100) * 10  # up to ~5e8, as the job's totals
    raw = spark.createDataFrame([(i, float(s)) for i, s in enumerate(sums)], "i long, v double")
    rounded = raw.select("i", F.round("v", 9).alias("v"))
    table = doubles_table([r.v for r in rounded.orderBy("i").collect()])
    assert_same_bytes(spark_file(rounded, tmp_path), csv_bytes(table))


def test_java_double_text_keeps_nulls_and_takes_chunked_arrays():
    chunked = pa.chunked_array([[1.0, None], [], [2e23, float("-inf")]], pa.float64())
    assert java_double_text(chunked).to_pylist() == ["1.0", None, "1.9999999999999998E23", "-Infinity"]
    assert java_double_text(pa.array([], pa.float64())).to_pylist() == []
    with pytest.raises(TypeError):
        java_double_text(pa.array([1.0], pa.float32()))


@pytest.mark.parametrize("column", [pa.array([1.0], pa.float32()), pa.array([1], pa.uint32()), pa.array([None])])
def test_types_without_a_spark_text_are_refused(column):
    with pytest.raises(TypeError, match="no Spark CSV text"):
        csv_bytes(pa.table({"c": column}))
