"""Benchmark: our job vs the seed's algorithm (plain PySpark, as the seed runs it) vs the same rules in DuckDB.

    .venv/bin/python glue/bench/benchmark.py [--rows 1000000] [--work /tmp/csv-ingest-bench]

Same local Spark session settings as the tests and local job runs (glue/session.py). Contenders: our job as it runs
(the Arrow engine, for uploads up to ingest.ARROW_MAX_BYTES), our job forced through its Spark plan (what bigger
uploads get), the seed's algorithm, DuckDB. Prints rows/s for each, CPU seconds (this process, the JVM and Spark's
Python workers), the ratios, and peak memory (resident set of the Python process, and of the JVM with its Python
workers). Two optional floors (--only parse,rules) put the Spark plan in perspective: the file read and parsed, and
read, parsed and put through the row rules, with nothing written (see run_floor). Not part of pytest.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

GLUE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(GLUE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate  # noqa: E402

SEED_EMAIL = "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,6}$"


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return found + [g for c in found for g in child_pids(c)]


class PeakMemory:
    """Samples the resident set of this process and of its children (the JVM) every 50 ms."""

    def __init__(self) -> None:
        self.python = 0
        self.jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.python = max(self.python, rss_kib(os.getpid()))
            self.jvm = max(self.jvm, sum(rss_kib(p) for p in child_pids(os.getpid())))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_ours(
    spark, data_root: str, output_root: str, size: int, processing_date: str, arrow_max_bytes: int | None = None
) -> dict:
    """The job's run_ingest on the one generated upload (arrow_max_bytes=-1: through the Spark plan, as uploads
    bigger than ingest.ARROW_MAX_BYTES are)."""
    import storage
    from contract import parse_manifest
    from ingest import run_ingest

    doc = {
        "format": "csv-ingest-manifest/1",
        "runKey": "BENCH",
        "createdAt": "2026-04-01T10:00:00.000Z",
        "bucket": "bench",
        "statsKey": "processed/stats/BENCH.json",
        "uploads": [
            {
                "uploadId": "bench/input/big.csv@T",
                "key": "input/big.csv",
                "versionId": None,
                # the job checks the object is still this version (a local file: its MD5); computed outside the job
                "etag": storage.etag_of_local(storage.join_uri(data_root, "input/big.csv")),
                "lastModified": "2026-04-01T09:00:00.000Z",
                "size": size,
                "outputPrefix": "processed/big/v=T/",
                "rejectedPrefix": "processed/rejected/big/v=T/",
            }
        ],
    }
    manifest = parse_manifest(json.dumps(doc), "bench")
    limit = {} if arrow_max_bytes is None else {"arrow_max_bytes": arrow_max_bytes}
    (result,) = run_ingest(spark, manifest, data_root, output_root, processing_date, **limit)
    assert result.status == "processed", result.error
    return {"rowsRead": result.rows_read, "rowsProcessed": result.rows_processed}


def run_seed(spark, input_path: str, output_root: str) -> dict:
    """The seed's Glue script re-expressed in plain PySpark, defects and all: several shows/counts, no caching."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    quiet = open(os.devnull, "w")  # noqa: SIM115 - the seed's show() output is not the point
    real_stdout, sys.stdout = sys.stdout, quiet
    try:
        raw_df = spark.read.option("header", "true").csv(input_path)
        raw_df.printSchema()
        raw_df.show(5, truncate=False)
        input_count = raw_df.count()
        cleaned_df = raw_df.withColumn("name", F.initcap(F.trim(F.col("name"))))
        cleaned_df = cleaned_df.withColumn(
            "email_valid", F.when(F.col("email").rlike(SEED_EMAIL), True).otherwise(False)
        )
        cleaned_df = cleaned_df.withColumn("date", F.to_date(F.col("date"), "yyyy-MM-dd"))
        cleaned_df = cleaned_df.withColumn("amount", F.regexp_replace(F.col("amount"), "[^0-9.]", ""))
        cleaned_df = cleaned_df.withColumn("amount", F.col("amount").cast(DoubleType()))
        cleaned_df = cleaned_df.withColumn("status", F.lower(F.trim(F.col("status"))))
        cleaned_df.show(5, truncate=False)
        clean_count = cleaned_df.count()
        transformed_df = cleaned_df.withColumn("processing_date", F.current_timestamp()).withColumn(
            "source_file", F.lit("input")
        )
        window_spec = Window.partitionBy("status").orderBy("date").rowsBetween(Window.unboundedPreceding, 0)
        transformed_df = transformed_df.withColumn("running_total_by_status", F.sum("amount").over(window_spec))
        transformed_df = transformed_df.withColumn(
            "amount_category",
            F.when(F.col("amount") < 100, "low")
            .when((F.col("amount") >= 100) & (F.col("amount") < 200), "medium")
            .otherwise("high"),
        )
        transformed_df = transformed_df.withColumn(
            "data_quality_issues", F.when(~F.col("email_valid"), "Invalid email").otherwise(None)
        )
        transformed_df.printSchema()
        transformed_df.show(5, truncate=False)
        output_count = transformed_df.count()
        final_df = transformed_df.select(
            "id", "name", "email", "email_valid", "date", "amount", "amount_category", "status",
            "running_total_by_status", "data_quality_issues", "processing_date", "source_file",
        )  # fmt: skip
        final_df.write.mode("overwrite").option("header", "true").csv(f"{output_root}seed/big")
        stats_df = spark.createDataFrame(
            [(input_path, input_count, clean_count, output_count, time.strftime("%Y-%m-%d %H:%M:%S"))],
            ["source_file", "input_count", "cleaned_count", "output_count", "processing_timestamp"],
        )
        stats_df.write.mode("overwrite").option("header", "true").json(f"{output_root}seed/stats")
    finally:
        sys.stdout = real_stdout
        quiet.close()
    return {"rowsRead": input_count, "rowsProcessed": output_count}


DUCKDB_SQL = r"""
CREATE OR REPLACE TEMP TABLE lines AS
SELECT * FROM read_csv(?, header = true, all_varchar = true, quote = '"', escape = '"',
                       columns = {'id': 'VARCHAR', 'name': 'VARCHAR', 'email': 'VARCHAR', 'date': 'VARCHAR',
                                  'amount': 'VARCHAR', 'status': 'VARCHAR'},
                       ignore_errors = true, store_rejects = true, filename = true);
CREATE OR REPLACE TEMP TABLE processed AS
WITH numbered AS (
  SELECT *, row_number() OVER () AS line_number FROM lines
), dedup AS (
  SELECT *, count(*) OVER (PARTITION BY filename, id, name, email, date, amount, status) - 1 AS duplicates_removed,
         row_number() OVER (PARTITION BY filename, id, name, email, date, amount, status ORDER BY line_number) AS n
  FROM numbered
), kept AS (SELECT * FROM dedup WHERE n = 1),
cleaned AS (
  SELECT filename AS source_file, line_number, duplicates_removed,
    nullif(trim(id), '') AS id,
    nullif(regexp_replace(trim(name), '\s+', ' ', 'g'), '') AS name0,
    nullif(trim(email), '') AS email,
    nullif(trim(date), '') AS date_text,
    nullif(trim(amount), '') AS amount_text,
    lower(nullif(trim(status), '')) AS status
  FROM kept
), parsed AS (
  SELECT *,
    array_to_string(list_transform(string_split(lower(name0), ' '), lambda w: upper(w[1]) || w[2:]), ' ') AS name,
    coalesce(regexp_full_match(email, '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}'), false)
      AS email_valid,
    coalesce(try_strptime(date_text, '%d-%m-%Y'), try_strptime(date_text, '%Y-%m-%d'))::DATE AS date,
    CASE WHEN regexp_full_match(regexp_replace(amount_text, '[\s$€£¥]', '', 'g'),
                                '[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?|[+-]?\.\d+')
         THEN replace(regexp_replace(amount_text, '[\s$€£¥]', '', 'g'), ',', '')::DOUBLE END AS amount,
    count(*) OVER (PARTITION BY source_file, nullif(trim(id), '')) AS id_rows
  FROM cleaned
)
SELECT id, name, email, email_valid, date, amount,
  CASE WHEN amount IS NULL THEN NULL WHEN amount < 100 THEN 'low' WHEN amount < 200 THEN 'medium' ELSE 'high' END
    AS amount_category,
  status,
  round(sum(amount) OVER (PARTITION BY source_file, status
        ORDER BY date NULLS LAST, try_cast(id AS BIGINT) NULLS LAST, id NULLS LAST, line_number
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 9) AS running_total_by_status,
  concat_ws(';',
    CASE WHEN id IS NULL THEN 'missing_id' END,
    CASE WHEN id IS NOT NULL AND id_rows > 1 THEN 'duplicate_id' END,
    CASE WHEN name IS NULL THEN 'missing_name' END,
    CASE WHEN email IS NULL THEN 'missing_email' END,
    CASE WHEN email IS NOT NULL AND NOT email_valid THEN 'invalid_email' END,
    CASE WHEN date_text IS NULL THEN 'missing_date' END,
    CASE WHEN date_text IS NOT NULL AND date IS NULL THEN 'invalid_date' END,
    CASE WHEN amount_text IS NULL THEN 'missing_amount' END,
    CASE WHEN amount_text IS NOT NULL AND amount IS NULL THEN 'invalid_amount' END,
    CASE WHEN status IS NULL THEN 'missing_status' END) AS data_quality_issues,
  ?::VARCHAR AS processing_date, source_file, line_number, duplicates_removed
FROM parsed;
"""


def run_floor(spark, data_root: str, with_rules: bool) -> dict:
    """A lower bound for any Spark job with our rules: the manifest's file read as text and parsed into fields
    (`with_rules`: and every row-local rule of transform.clean applied, exactly as the job's first pass builds it),
    evaluated for every row and written nowhere (Spark's `noop` sink). No line numbers, no duplicates, no running
    totals, no output: whatever the job does beyond this is on top."""
    import storage
    import transform
    from ingest import HEADER_PROBE_BYTES, _read_lines, inspect_header

    uri = storage.join_uri(data_root, "input/big.csv")
    layout = inspect_header(storage.read_bytes(uri, HEADER_PROBE_BYTES), "input/big.csv")  # as the job finds it
    if with_rules:
        rows = _read_lines(spark, [uri], layout, transform.DEFAULT_DATE_FORMATS)
    else:
        rows = transform.parse_lines(spark.read.text(uri), layout.field_count, dict(layout.positions))
    rows.write.format("noop").mode("overwrite").save()
    return {"rowsRead": 0, "rowsProcessed": 0}


def run_duckdb(input_path: str, output_dir: Path, processing_date: str) -> dict:
    """The same rules as one DuckDB SQL script (single node reference; rejected lines via store_rejects)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")
    con.execute(DUCKDB_SQL.split(";\nCREATE OR REPLACE TEMP TABLE processed")[0], [input_path])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE processed" + DUCKDB_SQL.split(";\nCREATE OR REPLACE TEMP TABLE processed")[1],
        [processing_date],
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    con.execute(
        "COPY (SELECT * EXCLUDE (line_number, duplicates_removed) FROM processed ORDER BY line_number) "
        f"TO '{output_dir / 'big.csv'}' (HEADER)"
    )
    con.execute(f"COPY (SELECT * FROM reject_errors) TO '{output_dir / 'rejected.csv'}' (HEADER)")
    processed, dups = con.execute("SELECT count(*), sum(duplicates_removed) FROM processed").fetchone()
    rejected = con.execute("SELECT count(DISTINCT (file_id, line)) FROM reject_errors").fetchone()[0]
    con.close()
    return {"rowsRead": processed + dups + rejected, "rowsProcessed": processed}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (the JVM: Spark's work on all cores; this process: DuckDB's)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def timed(label: str, fn):
    def tree() -> list[int]:
        return [os.getpid(), *child_pids(os.getpid())]

    with PeakMemory() as peak:
        before = {p: cpu_seconds(p) for p in tree()}
        start = time.perf_counter()
        figures = fn()
        seconds = time.perf_counter() - start
        # Processes started during the run (Spark's Python workers) count from zero; any that ended are missed.
        cpu = sum(cpu_seconds(p) - before.get(p, 0.0) for p in tree())
    return {
        "label": label,
        "seconds": seconds,
        "cpu": cpu,
        "python_mib": peak.python / 1024,
        "jvm_mib": peak.jvm / 1024,
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/csv-ingest-bench"))
    parser.add_argument(
        "--only",
        default="ours,ours-spark,seed,duckdb",
        help="comma-separated subset of ours,ours-spark,seed,duckdb,parse,rules (parse/rules: floors of the Spark "
        "plan, see run_floor)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds (contenders alternate); the best time is kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="  %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    only = set(args.only.split(","))

    stage = args.work / "stage"
    out = args.work / "out"
    big = stage / "input" / "big.csv"
    warm = args.work / "warm" / "input" / "big.csv"
    print(f"generating {args.rows:,} rows -> {big}", flush=True)
    generate(big, args.rows)
    generate(warm, 20_000, seed=7)
    shutil.rmtree(out, ignore_errors=True)

    import storage
    from session import LOCAL_SETTINGS, local_spark

    spark = local_spark("csv-ingest-benchmark")
    processing_date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    data_root, output_root = storage.local_uri(stage) + "/", storage.local_uri(out) + "/"
    # Warm the JVM (class loading, JIT) once so neither Spark contender pays it alone.
    warm_roots = storage.local_uri(args.work / "warm") + "/", storage.local_uri(args.work / "warm-out") + "/"
    run_ours(spark, *warm_roots, 0, processing_date)
    run_ours(spark, *warm_roots, 0, processing_date, arrow_max_bytes=-1)

    size = big.stat().st_size
    contenders = {
        "ours": ("ours (Arrow engine)", lambda: run_ours(spark, data_root, output_root, size, processing_date)),
        "ours-spark": (
            "ours, Spark plan (big uploads)",
            lambda: run_ours(spark, data_root, output_root, size, processing_date, arrow_max_bytes=-1),
        ),
        "seed": ("seed algorithm (PySpark)", lambda: run_seed(spark, storage.local_uri(big), output_root)),
        "duckdb": ("same rules in DuckDB", lambda: run_duckdb(str(big), out / "duckdb", processing_date)),
        "parse": ("floor: read+parse, no rules", lambda: run_floor(spark, data_root, with_rules=False)),
        "rules": ("floor: read+parse+row rules", lambda: run_floor(spark, data_root, with_rules=True)),
    }
    results: dict[str, dict] = {}
    for round_ in range(args.repeat):
        for name in contenders if round_ % 2 == 0 else reversed(list(contenders)):
            if name not in only:
                continue
            # Every contender starts from a collected heap: the previous one's garbage (the Spark plan makes a lot)
            # is not collected on the next one's time.
            gc.collect()
            spark.sparkContext._jvm.System.gc()
            r = timed(*contenders[name])
            print(f"  round {round_ + 1}: {r['label']}: {r['seconds']:.2f}s", flush=True)
            best = results.get(name)
            if best is None or r["seconds"] < best["seconds"]:
                r["python_mib"] = max(r["python_mib"], best["python_mib"] if best else 0)
                r["jvm_mib"] = max(r["jvm_mib"], best["jvm_mib"] if best else 0)
                results[name] = r
            else:
                best["python_mib"] = max(r["python_mib"], best["python_mib"])
                best["jvm_mib"] = max(r["jvm_mib"], best["jvm_mib"])
    print(f"\ninput: {args.rows:,} generated rows, {big.stat().st_size / 2**20:.1f} MiB; Spark: local[*] on "
          f"{os.cpu_count()} cores, shuffle partitions {LOCAL_SETTINGS['spark.sql.shuffle.partitions']}")  # fmt: skip
    print(f"best of {args.repeat} rounds (contenders alternate order each round)")
    print(f"{'contender':30} {'seconds':>8} {'CPU s':>10} {'rows/s':>11} {'rows read':>10} {'processed':>10} "
          f"{'peak py MiB':>12} {'peak JVM+workers MiB':>21}")  # fmt: skip
    for r in results.values():
        rate = args.rows / r["seconds"]
        counts = f"{r['rowsRead']:>10,} {r['rowsProcessed']:>10,}" if r["rowsRead"] else f"{'-':>10} {'-':>10}"
        print(f"{r['label']:30} {r['seconds']:8.2f} {r['cpu']:10.1f} {rate:11,.0f} {counts} "
              f"{r['python_mib']:12.0f} {r['jvm_mib']:21.0f}")  # fmt: skip
    seconds = {name: r["seconds"] for name, r in results.items()}
    if {"ours", "seed"} <= seconds.keys():
        print(f"\nours/seed speed ratio:   {seconds['seed'] / seconds['ours']:.2f}x (target >= 3x)")
    if {"ours-spark", "seed"} <= seconds.keys():
        print(f"Spark plan/seed ratio:   {seconds['seed'] / seconds['ours-spark']:.2f}x (uploads > ARROW_MAX_BYTES)")
    if "seed" in seconds:
        budget = seconds["seed"] / 3
        print(f"3x budget (seed / 3):    {budget:.2f}s")
        for name in ("parse", "rules"):
            if name in seconds:
                print(f"  {results[name]['label']} alone: {seconds[name]:.2f}s = {seconds[name] / budget:.0%} of it")
    if {"ours", "duckdb"} <= seconds.keys():
        print(f"ours/DuckDB speed ratio: {seconds['duckdb'] / seconds['ours']:.2f}x")
    spark.stop()


if __name__ == "__main__":
    main()
