"""Many small uploads in one run: a task processes them in batches (worker.process_batch), their records parsed and
the rules run once over a batch's rows, and every upload still gets exactly the outputs it gets when processed alone."""

from __future__ import annotations

from support import HEADER, MESSY_FILES, PROCESSING_DATE, stage_run

from csv_ingest import ingest
from csv_ingest.engine import reader, rules, worker


def tasks_of(staged):
    """(index, UploadTask) of every upload the driver's check accepts."""
    found = ingest.check_uploads(staged["manifest"], staged["data_root"])
    return [
        (i, worker.UploadTask(e, staged["data_root"], staged["output_root"], f.field_count, f.positions,
                              PROCESSING_DATE, rules.DEFAULT_DATE_FORMATS))
        for i, (e, f) in enumerate(zip(staged["manifest"].uploads, found, strict=True))
        if isinstance(f, ingest.Layout)
    ]  # fmt: skip


def small_files(n: int) -> dict[str, bytes]:
    return {
        f"f{i:03d}.csv": HEADER
        + f"{i},ann lee,a{i}@example.com,01-04-2025,{i}.5,active\n".encode()
        + b"2,bob,bad-email,2025-04-02,$10,pending\n" * (i % 3)  # exact duplicates in some
        + b"3,cy,c@example.com\n" * (i % 2)  # a rejected row in some
        for i in range(n)
    }


def test_a_task_runs_the_rules_once_per_batch_not_once_per_upload(tmp_path, monkeypatch):
    staged = stage_run(tmp_path, small_files(25))
    passes = []
    real = rules.process_uploads

    def counted(raw, line_number, uploads, *args, **kwargs):
        passes.append(len(uploads))
        return real(raw, line_number, uploads, *args, **kwargs)

    parsed = []
    real_parse = reader.parse_fields

    def parse_counted(text, *args, **kwargs):
        parsed.append(len(text))
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(rules, "process_uploads", counted)
    monkeypatch.setattr(reader, "parse_fields", parse_counted)
    monkeypatch.setattr(worker, "BATCH_UPLOADS", 10)

    results = worker.process_group(tasks_of(staged))

    assert passes == [10, 10, 5]
    assert parsed == [24, 25, 12]  # the records of a batch's uploads (one header layout) parsed at once
    assert [(i, r.status) for i, r in results] == [(i, "processed") for i in range(25)]
    assert [r.rows_read for _, r in results[:4]] == [1, 3, 3, 2]
    assert [(r.rows_processed, r.duplicates_removed, r.rows_rejected) for _, r in results[:4]] == [
        (1, 0, 0),
        (2, 0, 1),
        (2, 1, 0),
        (1, 0, 1),
    ]


def test_a_batch_writes_the_same_files_as_each_upload_alone(tmp_path):
    files = {**small_files(7), **MESSY_FILES}
    together = stage_run(tmp_path / "together", files)
    alone = stage_run(tmp_path / "alone", files)

    batch = dict(worker.process_group(tasks_of(together)))
    single = {i: worker.process_isolated(task) for i, task in tasks_of(alone)}

    assert len(batch) >= 10
    assert {i: (r.status, r.error, r.rows_read, r.rows_processed, r.rows_rejected, r.duplicates_removed,
                r.quality_issues) for i, r in batch.items()} == {
        i: (r.status, r.error, r.rows_read, r.rows_processed, r.rows_rejected, r.duplicates_removed,
            r.quality_issues) for i, r in single.items()
    }  # fmt: skip
    written = sorted(p.relative_to(together["out"]) for p in together["out"].rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(alone["out"]) for p in alone["out"].rglob("*") if p.is_file())
    assert len(written) == 6 * sum(1 for r in batch.values() if r.status == "processed")
    for path in written:
        assert (together["out"] / path).read_bytes() == (alone["out"] / path).read_bytes(), path


def test_without_pandas_arrow_calls_do_not_search_for_it_again():
    # pyarrow 17 tries `import pandas` on many calls when it is not installed (a search of sys.path each time);
    # worker.py records it as absent once. Where pandas is installed (Glue), nothing is changed.
    import importlib.util
    import sys

    import pyarrow as pa

    if not worker.pandas_known_absent():
        assert importlib.util.find_spec("pandas") is not None
        return
    searched = []

    class Spy:
        def find_spec(self, name, path=None, target=None):
            searched.append(name)

    sys.meta_path.insert(0, Spy())
    try:
        for _ in range(3):
            pa.scalar("x")
            pa.array(["a", None]).to_numpy(zero_copy_only=False)
    finally:
        sys.meta_path.remove(sys.meta_path[0])
    assert "pandas" not in searched
