"""One session-scoped local Spark for the whole suite (same settings as local job runs and the benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

GLUE_DIR = Path(__file__).resolve().parents[1]
# The job's modules are flat files in glue/ (Glue extra-py-files); `pytest -q glue` from the repo root finds them.
sys.path.insert(0, str(GLUE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from csv_ingest.io.session import local_spark  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    session = local_spark("csv-ingest-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def messy_run(spark, tmp_path_factory):
    """One run over all the messy uploads (shared: a Spark run is the expensive part of a test)."""
    from support import MESSY_FILES, PROCESSING_DATE, stage_run

    from csv_ingest.ingest import run_ingest

    staged = stage_run(tmp_path_factory.mktemp("messy"), MESSY_FILES)
    results = run_ingest(spark, staged["manifest"], staged["data_root"], staged["output_root"], PROCESSING_DATE)
    return {**staged, "results": {r.entry.key.removeprefix("input/"): r for r in results}}


@pytest.fixture
def moto_s3(monkeypatch):
    """moto's S3 as a server (Spark's Python workers are other processes); the environment that points boto3 at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from csv_ingest.io import storage

    storage._s3_client.cache_clear()
    yield env
    storage._s3_client.cache_clear()
    server.stop()
