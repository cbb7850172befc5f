"""The job's local side (the twin's staging folders, tests) with keys S3 allows but a file system does not spell as
they are: a segment over 255 bytes, a 1,024-byte key (soak finding F2: ENAMETOOLONG)."""

from __future__ import annotations

import hashlib

from csv_ingest.io import storage

LONG_SEGMENT = "ü" * 150  # 300 bytes of UTF-8
KEY_300 = f"input/soak/{LONG_SEGMENT}.csv"
# 1,024 bytes, S3's limit: every segment over the file system's 255 bytes
KEY_1024 = "input/" + "a" * 300 + "/" + "é" * 200 + "/" + "b" * (1024 - 6 - 300 - 1 - 400 - 1 - 4) + ".csv"


def test_keys_are_what_s3_allows():
    assert len(LONG_SEGMENT.encode()) == 300
    assert len(KEY_1024.encode()) == 1024


def test_reads_writes_lists_and_moves_long_keys(tmp_path):
    root = storage.local_uri(tmp_path) + "/"
    for i, key in enumerate((KEY_300, KEY_1024)):
        uri = storage.join_uri(root, key)
        storage.write_text(uri, f"id\n{i}\n", "text/csv")
        assert storage.read_text(uri) == f"id\n{i}\n"
        assert storage.read_bytes(uri, limit=3) == b"id\n"
        moved = storage.join_uri(root, "processed/" + key + "/part-00000.csv")
        storage.move(uri, moved)
        assert storage.read_text(moved) == f"id\n{i}\n"
    assert len(storage.list_files(storage.join_uri(root, "processed/"))) == 2
    storage.delete_folder(storage.join_uri(root, "processed/"))
    assert storage.list_files(root) == []


def test_only_long_components_are_renamed_locally(tmp_path):
    assert storage.local_name("a" * 200) == "a" * 200
    assert storage.local_name("a" * 201) == "~sha256-" + hashlib.sha256(b"a" * 201).hexdigest()
    root = storage.local_uri(tmp_path) + "/"
    storage.write_text(storage.join_uri(root, KEY_300), "x")
    digest = hashlib.sha256(LONG_SEGMENT.encode() + b".csv").hexdigest()
    # the twin finds the file by the same rule (the 304-byte name "ü…ü.csv" is one component)
    assert (tmp_path / "input" / "soak" / f"~sha256-{digest}").read_text() == "x"
