"""One generated upload processed whole and split: the processed and rejected CSVs (part files joined, each part's
header dropped after the first) compared by SHA-256, the Parquet parts as one table (Table.equals), and the counts.

    .venv/bin/python glue/bench/compare_split.py --work /tmp/split-bench --mib 100 --split-mib 64
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import run_ours


def joined_csv(folder: Path) -> tuple[str, int, int]:
    """SHA-256, bytes and part count of the folder's part-*.csv joined (one header)."""
    digest, size = hashlib.sha256(), 0
    parts = sorted(folder.glob("part-*.csv"))
    for i, part in enumerate(parts):
        data = part.read_bytes()
        if i:
            data = data[data.index(b"\n") + 1 :]
        digest.update(data)
        size += len(data)
    return digest.hexdigest(), size, len(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/split-bench"))
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--split-mib", type=float, default=64)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from csv_ingest.io import session, storage

    spark = session.local_spark("split-compare")
    processing_date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    stage = args.work / f"scale-{args.mib}" / "stage"
    big = stage / "input" / "big.csv"
    size, etag = big.stat().st_size, storage.etag_of_local(storage.local_uri(big))
    found = {}
    for name, split_bytes in (("whole", size + 1), ("split", int(args.split_mib * 2**20))):
        out = args.work / f"scale-{args.mib}" / f"compare-{name}"
        shutil.rmtree(out, ignore_errors=True)
        roots = storage.local_uri(stage) + "/", storage.local_uri(out) + "/"
        counts = run_ours(spark, *roots, size, etag, processing_date, split_bytes)
        processed = next((out / "processed/big").glob("v=*"))
        rejected = next((out / "rejected/big").glob("v=*"))
        parquet = next(out.glob("parquet/*/big/v=*"))
        table = pa.concat_tables(pq.read_table(p) for p in sorted(parquet.glob("part-*.parquet")))
        found[name] = (counts, joined_csv(processed), joined_csv(rejected), table)
        print(f"{name}: {counts}; processed CSV sha256 {found[name][1][0]} ({found[name][1][1]:,} bytes, "
              f"{found[name][1][2]} parts); rejected CSV sha256 {found[name][2][0]} ({found[name][2][1]:,} bytes, "
              f"{found[name][2][2]} parts); Parquet {table.num_rows:,} rows", flush=True)  # fmt: skip
    whole, split = found["whole"], found["split"]
    same = {
        "counts": whole[0] == split[0],
        "processed CSV": whole[1][:2] == split[1][:2],
        "rejected CSV": whole[2][:2] == split[2][:2],
        "Parquet": whole[3].equals(split[3]),
    }
    print("identical: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()))
    spark.stop()
    sys.exit(0 if all(same.values()) else 1)


if __name__ == "__main__":
    main()
