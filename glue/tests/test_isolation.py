"""Per-upload isolation when Spark itself fails: one upload's failure never takes the others down."""

from __future__ import annotations

from support import HEADER, PROCESSING_DATE, read_output, stage_run

import ingest

GOOD = HEADER + b"1,Ann Lee,ann@example.com,01-04-2025,10,active\n"


def run(spark, staged):
    roots = (staged["data_root"], staged["output_root"])
    return {r.entry.key: r for r in ingest.run_ingest(spark, staged["manifest"], *roots, PROCESSING_DATE)}


def test_a_failing_write_fails_only_that_upload(spark, tmp_path, monkeypatch):
    staged = stage_run(tmp_path, {"a.csv": GOOD, "b.csv": GOOD})
    # Several uploads are written together, then each is published (moved) into its own folder: fail b's.
    real_move = ingest.storage.move

    def move(src, dst):
        if "/processed/b/" in dst:
            raise OSError("disk full")
        real_move(src, dst)

    monkeypatch.setattr(ingest.storage, "move", move)
    results = run(spark, staged)
    assert (results["input/b.csv"].status, results["input/b.csv"].error) == (
        "failed",
        "input/b.csv: could not write output: OSError: disk full",
    )
    assert results["input/a.csv"].status == "processed"
    assert len(read_output(next((staged["out"] / "processed" / "a").glob("v=*")))) == 2


def test_a_broken_shared_pass_is_retried_upload_by_upload(spark, tmp_path, monkeypatch):
    staged = stage_run(tmp_path, {"a.csv": GOOD, "bad.csv": GOOD})
    real_read = ingest._read_lines

    def read_lines(spark, uris, layout, date_formats):
        if any(u.endswith("/bad.csv") for u in uris):
            raise RuntimeError("corrupt block")
        return real_read(spark, uris, layout, date_formats)

    monkeypatch.setattr(ingest, "_read_lines", read_lines)
    results = run(spark, staged)
    assert (results["input/bad.csv"].status, results["input/bad.csv"].error) == (
        "failed",
        "input/bad.csv: processing failed: RuntimeError: corrupt block",
    )
    assert (results["input/a.csv"].status, results["input/a.csv"].rows_processed) == ("processed", 1)


def test_an_upload_overwritten_after_the_run_was_planned_is_reported_superseded(spark, tmp_path):
    staged = stage_run(tmp_path, {"a.csv": GOOD, "b.csv": GOOD})
    (tmp_path / "stage" / "input" / "b.csv").write_bytes(GOOD + b"2,Bob Ray,bob@example.com,02-04-2025,20,active\n")

    results = run(spark, staged)

    assert results["input/b.csv"].status == "failed"
    assert results["input/b.csv"].error.startswith("superseded: input/b.csv was uploaded again after this run")
    assert results["input/a.csv"].status == "processed"
    assert not (staged["out"] / "processed" / "b").exists()


def test_keys_with_uri_characters_are_read_as_named_under_a_root_with_a_space(spark, tmp_path):
    # "#", "?" and "%" are legal in S3 keys and match input/*.csv; a URI parser would cut or decode them.
    names = ["r#1.csv", "q?x.csv", "p%41.csv", "s p.csv"]
    staged = stage_run(tmp_path / "my runs", {name: GOOD for name in names})

    results = run(spark, staged)

    assert {k: (r.status, r.error, r.rows_processed) for k, r in results.items()} == {
        f"input/{name}": ("processed", None, 1) for name in names
    }
    for i, name in enumerate(names):
        rows = read_output(staged["out"] / "processed" / name.removesuffix(".csv") / f"v=T{i}")
        assert (rows[1][0], rows[1][-1]) == ("1", f"input/{name}")
