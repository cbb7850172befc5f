"""Spark settings: the job's own (applied on Glue and locally) and the local session's (tests, local runs and the
benchmark share them; never used on Glue)."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

LOCAL_SETTINGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.sql.adaptive.enabled": "true",
    # No .crc side files next to local outputs (the twin copies output folders to its S3 as they are).
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "spark.hadoop.fs.file.impl.disable.cache": "true",
    # Never fetch anything at run time.
    "spark.jars.packages": "",
    "spark.jars.ivySettings": "",
}


# SQL settings the job sets on whatever session it runs in (runtime-settable, so Glue's session takes them too).
JOB_SQL_SETTINGS = {
    # The run caches its cleaned rows once and scans them a few times: plain columns are faster to build and read.
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}


def apply_job_settings(spark: SparkSession) -> SparkSession:
    for key, value in JOB_SQL_SETTINGS.items():
        spark.conf.set(key, value)
    return spark


def local_spark(app_name: str = "csv-ingest-local") -> SparkSession:
    # Spark's Python workers run the Arrow engine: the same interpreter (and venv) as this process.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master("local[*]").appName(app_name)
    for key, value in LOCAL_SETTINGS.items():
        if value:
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return apply_job_settings(spark)
