"""The Arrow engine's reading and parsing against the Spark path, on the same file bytes: line numbers, blank lines,
raw values (null and "" told apart), corrupt lines with their reasons and raw text, and the line named for bytes
that are not UTF-8. The Spark side is `spark.read.text` + `transform.parse_lines` + `transform.rejected_rows`, with
line numbers, blank lines and bad UTF-8 decided by the expressions `ingest` uses."""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

import arrow_lines
import transform
from errors import FileRejected
from ingest import inspect_header, spark_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from generate import generate

HEADER = "id,name,email,date,amount,status"
# Lines that make the parsers disagree if anything is off, one case per line.
TRICKY = [
    "1,John Doe,john@example.com,01-04-2025,12.50,active",
    "2,,,,,",
    '3,"","",x,"",y',
    "4, spaced , ,  ,\t, tab\t",
    '5,"Smith, John","a ""quoted"" name",d,"$1,234.56",active',
    '6,"b"c,d,e,f,g',
    'a,"b"c,d',
    '7,b"c,d,e,f,g',
    'a,b"c,d',
    '8,"unclosed,d,e,f,g',
    '9,"unclosed ""twice"", really,d,e,f',
    " , , , , , ",
    ",,,,,",
    ",,,,,,",
    "10,a,b,c,d,e,",
    "11,a,b",
    "12,a,b,c,d,e,f,g",
    "13\ta\tb\tc\td\te",
    "\t,\t,\t,\t,\t,\t",
    "",
    "   ",
    "\t \t",
    "\u00a0",
    "14,Zoë Ñúñez,zoe@example.com,02-04-2025,€5,pending",
    "15,李 小龍,li@example.com,2025-04-02,abc,PENDING",
    '16,"🙂 smile","x🙂"y,🙂,"🙂""🙂",🙂',
    '17,"a" ,"b"\t,c,d,e',
    '18,"a" x,"b"\t"c",d,e,f',
    '19,a\x00b,"c\x00d","e\x00""f",x,y',
    '\x00,"\x00",\x00"\x00,"",""""',
    "\ufeff20,a,b,c,d,e",
    '21,a,b,c,d,"e"',
    '22,a,b,c,d,e"',
    '"',
    '""',
    '"""',
    '23,"a""",b,c,d,e',
    '24,"x" 🙂',
    '25,a,b,c,d,"x" 🙂"',
    '26,"multi',
    'line",c,d,e,f',
    '27,"' + "long " * 1000 + '",c,d,e,f',
    "28," + "x" * 5000 + ",c,d,e,f",
    '"29",b,"c",d,"e",f',
    '30,"""",""""""," "" ",e,f',
]


def spark_side(spark, path: Path) -> tuple[list[tuple], list[tuple]]:
    """Per line (line_number, value, blank, bad UTF-8, REQUIRED_COLUMNS..., corrupt) and the rejected rows
    (line_number, reason, raw_line), as the Spark path reads one file of the standard or any other layout."""
    layout = inspect_header(path.read_bytes()[: 64 * 1024], path.name)
    lines = spark.read.text(spark_path(str(path))).select(
        F.lit(path.name).alias("source_file"),
        F.monotonically_increasing_id().alias("_row_id"),
        (F.btrim(F.col("value"), F.lit(" \t")) == "").alias("_blank"),
        (F.col("value").cast("binary") != F.encode(F.col("value"), "UTF-8")).alias("_bad_utf8"),
        F.col("value").alias("_text"),
        "value",
    )
    # Test files are small enough to be one text split, so row ids run in file order (ingest adds split offsets).
    numbered = lines.withColumn(transform.LINE_NUMBER, F.row_number().over(Window.orderBy("_row_id")))
    parsed: DataFrame = transform.parse_lines(numbered, layout.field_count, dict(layout.positions)).cache()
    rows = [
        tuple(r)
        for r in parsed.orderBy(transform.LINE_NUMBER)
        .select(
            transform.LINE_NUMBER,
            "_text",
            "_blank",
            "_bad_utf8",
            *transform.REQUIRED_COLUMNS,
            F.col(transform.CORRUPT_RECORD).isNotNull(),
        )
        .collect()
    ]
    kept = parsed.filter((F.col(transform.LINE_NUMBER) > 1) & ~F.col("_blank"))  # what ingest hands rejected_rows
    rejected = transform.rejected_rows(kept, layout.field_count).orderBy(transform.LINE_NUMBER)
    reasons = [tuple(r) for r in rejected.select(transform.LINE_NUMBER, "reason", "raw_line").collect()]
    parsed.unpersist()
    return rows, reasons


def arrow_side(path: Path) -> tuple[list[tuple], list[tuple]]:
    """The same two lists from arrow_lines (the header, line 1, is compared by its number only)."""
    data = path.read_bytes()
    layout = inspect_header(data[: 64 * 1024], path.name)
    lines = arrow_lines.split_lines(data, path.name)
    parsed = arrow_lines.parse_fields(lines.text, layout.field_count, dict(layout.positions))
    columns = [
        lines.line_number,
        lines.text,
        lines.blank,
        *[parsed.values[c] for c in transform.REQUIRED_COLUMNS],
        parsed.corrupt,
    ]
    rows = [
        (n, text, blank, False, *rest) for n, text, blank, *rest in zip(*[c.to_pylist() for c in columns], strict=True)
    ]
    rejected = pc.and_(parsed.corrupt, pc.invert(lines.blank))
    raw = lines.text.filter(rejected)
    reasons = list(
        zip(
            lines.line_number.filter(rejected).to_pylist(),
            arrow_lines.reason(raw, layout.field_count).to_pylist(),
            raw.to_pylist(),
            strict=True,
        )
    )
    return rows, reasons


def assert_same_as_spark(spark, path: Path) -> None:
    spark_rows, spark_reasons = spark_side(spark, path)
    arrow_rows, arrow_reasons = arrow_side(path)
    assert [r[0] for r in spark_rows] == [1] + [r[0] for r in arrow_rows]  # the same lines, numbered the same
    # Values are compared where ingest uses them: not on the header, not on blank lines.
    spark_rows = [r if not r[2] else r[:4] for r in spark_rows[1:]]
    arrow_rows = [r if not r[2] else r[:4] for r in arrow_rows]
    assert arrow_rows == spark_rows
    assert arrow_reasons == spark_reasons


def short_lines(alphabet: str, longest: int) -> list[str]:
    """Every line of up to `longest` characters over `alphabet`."""
    return ["".join(p) for n in range(1, longest + 1) for p in itertools.product(alphabet, repeat=n)]


@pytest.mark.parametrize(
    "terminators",
    [
        ("\n", ""),  # the last line without a terminator
        ("\n", "\n"),
        ("\r\n", "\r\n"),
        ("\r", "\r"),
        ("\n", "\n\n"),  # a blank last line
        ("mixed", "\r\n\r"),
    ],
)
def test_tricky_lines_read_and_parse_as_in_spark(spark, tmp_path, terminators):
    between, last = terminators
    lines = [HEADER, *TRICKY, *short_lines('a,"\t\x00', 5)]
    if between == "mixed":
        cycle = itertools.cycle(["\n", "\r\n", "\r", "\r\r\n", "\n\r"])
        body = "".join(line + next(cycle) for line in lines[:-1])
    else:
        body = between.join(lines[:-1]) + between
    path = tmp_path / "tricky.csv"
    path.write_bytes(("\ufeff" + body + lines[-1] + last).encode("utf-8"))
    assert_same_as_spark(spark, path)


def test_every_line_ending_counts_as_hadoop_counts_it(spark, tmp_path):
    path = tmp_path / "endings.csv"
    path.write_bytes(b"id,name,email,date,amount,status\r\n1,a\n\n2,b\r\r3,c\r\n\r\n4,d\n\r5,e\r")
    lines = arrow_lines.split_lines(path.read_bytes(), "endings.csv")
    assert lines.text.to_pylist() == ["1,a", "", "2,b", "", "3,c", "", "4,d", "", "5,e"]
    assert lines.line_number.to_pylist() == list(range(2, 11))
    assert lines.blank.to_pylist() == [False, True, False, True, False, True, False, True, False]
    assert_same_as_spark(spark, path)


@pytest.mark.parametrize("header", [",".join(reversed(HEADER.split(","))), HEADER + ",extra"])
def test_generated_upload_with_injected_quoted_lines_parses_as_in_spark(spark, tmp_path, monkeypatch, header):
    path = generate(tmp_path / "generated.csv", 20_000, seed=7)
    rng = random.Random(11)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = header
    pieces = ["a", "b", ",", '"', '"', " ", "\t", "é", "🙂", "\x00", "$1,234.50", '""', '","']
    for _ in range(2_000):
        fake = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        lines.insert(rng.randint(1, len(lines)), fake)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    monkeypatch.setattr(arrow_lines, "_SLICE_LINES", 3_000)  # several slices, parsed at once
    assert_same_as_spark(spark, path)


BAD_UTF8 = [
    b"\xff",
    b"caf\xe9",  # Latin-1
    b"\xc3(",  # a lead byte without its continuation
    b"\xc0\xaf",  # overlong "/"
    b"\xed\xa0\x80",  # a UTF-16 surrogate
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xe2\x82",  # cut short by the line's end
]


def test_bad_utf8_names_the_line_spark_names(spark, tmp_path):
    files = {}
    rng = random.Random(3)
    for k, bad in enumerate(BAD_UTF8):
        lines = [b"id,name,email,date,amount,status", *[b"%d,a,b,c,d,e" % i for i in range(rng.randint(0, 30))]]
        at = rng.randint(0, len(lines))
        lines.insert(at, b"9," + bad + b",b,c,d,\xc3\xa9")
        lines.append(b"\xff\xfe")  # a later bad line is not the one named
        terminators = itertools.cycle([b"\n", b"\r\n", b"\r"])
        files[f"bad{k}.csv"] = b"".join(line + next(terminators) for line in lines)
    files["bad_header.csv"] = b"id,\xe9\n1,a\n"
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    # Per file, the first bad line as ingest._process computes it.
    read = spark.read.text([spark_path(str(tmp_path / name)) for name in files]).select(
        F.col("_metadata.file_name").alias("file"),
        F.monotonically_increasing_id().alias("row_id"),
        (F.col("value").cast("binary") != F.encode(F.col("value"), "UTF-8")).alias("bad"),
    )
    first = read.groupBy("file").agg(
        (F.min(F.when(F.col("bad"), F.col("row_id"))) - F.min("row_id") + 1).alias("first_bad")
    )
    expected = {r["file"]: r["first_bad"] for r in first.collect()}

    for name, data in files.items():
        with pytest.raises(FileRejected) as caught:
            arrow_lines.split_lines(data, f"input/{name}")
        assert str(caught.value) == f"input/{name}: not valid UTF-8 (first bad bytes on line {expected[name]})"


def test_empty_and_header_only_uploads_have_no_lines():
    for data in (b"", b"id,name,email,date,amount,status", b"id,name,email,date,amount,status\r\n"):
        lines = arrow_lines.split_lines(data, "input/x.csv")
        assert (len(lines.text), len(lines.line_number), len(lines.blank)) == (0, 0, 0)
        parsed = arrow_lines.parse_fields(lines.text, 6, {c: i for i, c in enumerate(transform.REQUIRED_COLUMNS)})
        assert len(parsed.corrupt) == 0


def test_a_line_with_more_fields_than_spark_takes_is_an_error():
    text = pa.array(["1,a,b,c,d,e", "," * arrow_lines.MAX_FIELDS])
    with pytest.raises(ValueError, match="more than the 20480 a line may have"):
        arrow_lines.parse_fields(text, 6, {c: i for i, c in enumerate(transform.REQUIRED_COLUMNS)})
