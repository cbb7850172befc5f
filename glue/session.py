"""Local Spark session settings shared by local job runs, the tests and the benchmark (never used on Glue)."""

from __future__ import annotations

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


def local_spark(app_name: str = "csv-ingest-local") -> SparkSession:
    builder = SparkSession.builder.master("local[*]").appName(app_name)
    for key, value in LOCAL_SETTINGS.items():
        if value:
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
