"""A file's rows depend only on that file: alone or with other uploads, the output is identical."""

from __future__ import annotations

from support import MESSY_FILES, PROCESSING_DATE, output_text, stage_run

from csv_ingest.ingest import run_ingest


def test_same_file_alone_and_in_a_batch_gives_identical_output(spark, tmp_path, messy_run):
    alone = {k: MESSY_FILES[k] for k in ("bom_crlf_quotes.csv", "dups.csv")}
    staged = stage_run(tmp_path, alone)
    run_ingest(spark, staged["manifest"], staged["data_root"], staged["output_root"], PROCESSING_DATE)
    for stem in ("bom_crlf_quotes", "dups"):
        for prefix in ("processed", "rejected"):
            solo = next((staged["out"] / prefix / stem).glob("v=*"))
            batch = next((messy_run["out"] / prefix / stem).glob("v=*"))
            assert output_text(solo) == output_text(batch), f"{prefix}/{stem}"
