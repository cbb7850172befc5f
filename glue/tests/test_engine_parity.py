"""The two engines give identical files: the same run through the Arrow engine (arrow_job, uploads up to
ingest.ARROW_MAX_BYTES) and through the Spark plan (transform.py, bigger uploads) writes byte-identical processed and
rejected CSVs and the same per-upload results."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from support import MESSY_FILES, PROCESSING_DATE, stage_run

import ingest
from ingest import run_ingest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from generate import generate

HEADER = "id,name,email,date,amount,status\n"
# Lines a generator does not make: quoting, casing Java and Arrow differ on, exact decimals, ties, odd bytes.
TRICKY_LINES = [
    '1,"Smith, John",john@example.com,01-04-2025,"$1,234.50",active',
    '2,"Jane ""JJ"" Doe",jane@example.com,2025-04-02,-20,active',
    '3,  "quoted late" ,x@example.com,02-04-2025,5,active',
    '4,ab"c,y@example.com,02-04-2025,5,active',
    '5,"unbalanced,z@example.com,02-04-2025,5,active',
    "6,ΟΔΥΣΣΕΥΣ ΣΑΣ,o@example.com,03-04-2025,0.0000000005,pending",
    "7,ßtraße ǆuro,s@example.com,03-04-2025,0.1234567894,pending",
    "8,İNCE გიორგი 𐐨x,i@example.com,03-04-2025,1000000000000.01,pending",
    "9,\u00a0ann\u3000\tlee\u00a0,a@example.com\u2028,03-04-2025,\u00a05\u00a0,PENDING",
    "10,tie one,t@example.com,04-04-2025,1,tie",
    "10,tie two,t@example.com,04-04-2025,10,tie",
    "10,tie one,t@example.com,04-04-2025,1,tie",
    '11,big,b@example.com,04-04-2025,"999,999,999,999,999",tie',
    "12,too big,b@example.com,04-04-2025,1000000000000000,tie",
    "13,neg,n@example.com,04-04-2025,-0.5,neg",
    "14,neg,n@example.com,05-04-2025,-0.25,neg",
    "15,year,y@example.com,29-02-2024,1e3,",
    "-7,minus,m@example.com,2024-02-30,+.5,x",
    "007,zeros,z@example.com,01-01-0001,1.,x",
    "abc,text id,t@example.com,01-01-2025,.5,x",
    ",,,,,",
    "   ,  , , , , ",
    "16,extra,e@example.com,01-04-2025,1,active,extra",
    "17,short",
    "19,a\x1fb,c,01-04-2025,5,x",  # not a copy of the next line, though the values joined with U+001F are the same
    "19,a,b\x1fc,01-04-2025,5,x",
    "20,\x00,n@example.com,01-04-2025,5,x",  # a NUL value is not an empty one
    "20,,n@example.com,01-04-2025,5,x",
    "21,nul status,s@example.com,01-04-2025,5,\x00",
    "21,nul status,s@example.com,01-04-2025,5,",
    "\x00,nul id,i@example.com,01-04-2025,5,x",
    ",nul id,i@example.com,01-04-2025,5,x",
    '18,"a quoted stretch that never ends' + "," * 3000 + "x" * 20000,  # Java's regex once overflowed its stack here
    "",
    "\t",
]


def tricky_file(seed: int = 5) -> bytes:
    rng = random.Random(seed)
    lines = TRICKY_LINES * 3
    rng.shuffle(lines)
    return (HEADER + "\r\n".join(lines) + "\r\n").encode("utf-8")


@pytest.fixture(scope="module")
def both_engines(spark, tmp_path_factory):
    generated = tmp_path_factory.mktemp("gen") / "gen.csv"
    generate(generated, 20_000, seed=11)
    files = {**MESSY_FILES, "tricky.csv": tricky_file(), "generated.csv": generated.read_bytes()}
    runs = {}
    for engine, limit in (("arrow", 1 << 40), ("spark", -1)):
        staged = stage_run(tmp_path_factory.mktemp(engine), files)
        roots = staged["data_root"], staged["output_root"]
        results = run_ingest(spark, staged["manifest"], *roots, PROCESSING_DATE, arrow_max_bytes=limit)
        runs[engine] = {"out": staged["out"], "results": results, "manifest": staged["manifest"]}
    return runs


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_both_engines_write_the_same_files(both_engines):
    arrow, spark = (files_under(both_engines[e]["out"]) for e in ("arrow", "spark"))
    assert sorted(arrow) == sorted(spark)
    different = [name for name in arrow if arrow[name] != spark[name]]
    assert not different, f"differ: {different}"
    # Not trivially equal: the tricky and generated uploads were processed, with rows and rejected rows.
    assert any(name.startswith("processed/tricky/") and len(data) > 1000 for name, data in arrow.items())
    rejected = [data for name, data in arrow.items() if name.startswith("processed/rejected/generated/")]
    assert any(data.count(b"\n") > 10 for data in rejected)


def test_both_engines_report_the_same_results(both_engines):
    manifest = both_engines["arrow"]["manifest"]
    arrow, spark = ([r.to_json(manifest) for r in both_engines[e]["results"]] for e in ("arrow", "spark"))
    assert arrow == spark
    by_key = {r["key"]: r for r in arrow}
    assert by_key["input/generated.csv"]["status"] == "processed"
    assert by_key["input/generated.csv"]["duplicatesRemoved"] > 0
    assert by_key["input/latin1.csv"]["status"] == "failed"


def test_uploads_are_routed_by_size(spark, tmp_path, monkeypatch):
    good = b"id,name,email,date,amount,status\n1,Ann Lee,ann@example.com,01-04-2025,10,active\n"
    staged = stage_run(tmp_path, {"small.csv": good, "limit.csv": good + b"\n", "big.csv": good + b"\n\n"})
    limit = len(good) + 1
    seen = {"arrow": [], "spark": []}
    real_tasks, real_process = ingest.run_in_tasks, ingest._process

    def run_in_tasks(spark, tasks, *args):
        seen["arrow"] += [t.entry.key for t in tasks]
        return real_tasks(spark, tasks, *args)

    def process(spark, manifest, data_root, output_root, layouts, *args):
        seen["spark"] += [manifest.uploads[i].key for i in layouts]
        return real_process(spark, manifest, data_root, output_root, layouts, *args)

    monkeypatch.setattr(ingest, "run_in_tasks", run_in_tasks)
    monkeypatch.setattr(ingest, "_process", process)
    roots = staged["data_root"], staged["output_root"]
    results = ingest.run_ingest(spark, staged["manifest"], *roots, PROCESSING_DATE, arrow_max_bytes=limit)
    assert seen == {"arrow": ["input/small.csv", "input/limit.csv"], "spark": ["input/big.csv"]}
    assert [(r.status, r.rows_processed) for r in results] == [("processed", 1)] * 3


def test_every_cased_character_is_cased_as_spark_does(spark):
    # Spark's lower() and initcap() (Java 17, Unicode 13) against the Arrow engine's, for every character with a
    # case mapping in Python's tables, first in a word and inside one.
    import pyarrow as pa
    from pyspark.sql import functions as F

    import arrow_rules

    cased = [chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    cased = [c for c in cased if c.lower() != c or c.upper() != c or c.title() != c]
    values = [f"{c}X{c} x{c}" for c in cased]
    rows = spark.createDataFrame([(v,) for v in values], "v string").select(F.lower("v"), F.initcap("v")).collect()
    lowered = arrow_rules.java_lower(pa.array(values)).to_pylist()
    titled = arrow_rules.proper_case(pa.array(values)).to_pylist()
    differ = [
        f"U+{ord(c):04X}"
        for c, r, low, title in zip(cased, rows, lowered, titled, strict=True)
        if (r[0], r[1]) != (low, title)
    ]
    assert len(values) > 2000
    assert differ == []
