"""Where the split path's time goes: one run of our job on a generated upload (forced split), then per Spark stage
its tasks' run time, JVM CPU time, GC time and shuffle bytes (Spark's REST API), and the CPU seconds of the JVM, of
Spark's Python workers (reaped ones included) and of this process.

    .venv/bin/python glue/bench/profile_split.py --work /tmp/split-bench --mib 100 --split-mib 64
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import GENERATED_ROW_BYTES, PeakMemory, child_pids, cpu_seconds, load, run_ours
from generate import generate


def cpu_by_kind() -> dict[str, float]:
    """CPU seconds so far: this process, the JVM (its own threads) and the Python workers (the daemon with its
    reaped workers, and the live workers)."""
    out = {"driver": cpu_seconds(os.getpid()), "jvm": 0.0, "workers": 0.0}
    for pid in child_pids(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                exe = handle.read().split(b"\0")[0]
        except OSError:
            continue
        if b"java" in exe:
            out["jvm"] += cpu_seconds(pid)
        elif b"python" in exe:
            out["workers"] += cpu_seconds(pid, reaped_children=True)
    return out


def jvm_threads() -> dict[str, float]:
    """CPU seconds so far of the JVM's threads, summed by name (digits dropped: "GC Thread#1" -> "GC Thread#")."""
    out: dict[str, float] = {}
    for pid in child_pids(os.getpid()):
        if b"java" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
            continue
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            name = "".join(c for c in stat[stat.index("(") + 1 : stat.rindex(")")] if not c.isdigit())
            fields = stat.rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


class Workers:
    """The pids of Spark's Python workers seen during the run (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.pids |= {
                p for p in child_pids(os.getpid()) if b"python" in Path(f"/proc/{p}/cmdline").read_bytes()[:200]
            }
            time.sleep(0.02)

    def stop(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.pids


def stages(spark) -> list[dict]:
    base = spark.sparkContext.uiWebUrl + "/api/v1/applications/" + spark.sparkContext.applicationId
    with urllib.request.urlopen(base + "/stages?status=complete") as response:
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/split-bench"))
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--split-mib", type=float, default=64)
    parser.add_argument("--range-mib", type=float, default=0, help="split.RANGE_BYTES for this run")
    parser.add_argument("--py-spy", default="", help="a py-spy binary: sample Spark's Python workers during the run")
    parser.add_argument("--py-spy-out", default="/tmp/split-profile.txt")
    args = parser.parse_args()

    from csv_ingest.engine import split
    from csv_ingest.io import session, storage

    if args.range_mib:
        split.RANGE_BYTES = int(args.range_mib * 2**20)

    session.LOCAL_SETTINGS["spark.ui.enabled"] = "true"
    spark = session.local_spark("split-profile")
    processing_date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    stage = args.work / f"scale-{args.mib}" / "stage"
    out = args.work / f"scale-{args.mib}" / "profile-out"
    big = stage / "input" / "big.csv"
    if not big.exists():
        generate(big, max(1000, int(args.mib * 2**20 / GENERATED_ROW_BYTES)))
    warm = args.work / "warm" / "input" / "big.csv"
    if not warm.exists():
        generate(warm, 20_000, seed=7)
    warm_roots = storage.local_uri(args.work / "warm") + "/", storage.local_uri(args.work / "warm-out") + "/"
    run_ours(spark, *warm_roots, 0, storage.etag_of_local(storage.local_uri(warm)), processing_date)
    before_ids = {s["stageId"] for s in stages(spark)}
    size, etag = big.stat().st_size, storage.etag_of_local(storage.local_uri(big))
    roots = storage.local_uri(stage) + "/", storage.local_uri(out) + "/"
    spy = None
    if args.py_spy:
        daemons = [p for p in child_pids(os.getpid()) if b"pyspark.daemon" in Path(f"/proc/{p}/cmdline").read_bytes()]
        command = [args.py_spy, "record", "--format", "raw", "--subprocesses", "--rate", "50", "--nonblocking",
                   "-o", args.py_spy_out, "--pid", str(daemons[0])]  # fmt: skip
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        driver = [args.py_spy, "record", "--format", "raw", "--rate", "50", "--nonblocking",
                  "-o", args.py_spy_out + ".driver", "--pid", str(os.getpid())]  # fmt: skip
        driver_spy = subprocess.Popen(driver, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
    print(f"start ({load()})", flush=True)
    cpu0, threads0, workers = cpu_by_kind(), jvm_threads(), Workers()
    start = time.perf_counter()
    with PeakMemory() as peak:
        figures = run_ours(spark, *roots, size, etag, processing_date, int(args.split_mib * 2**20))
    seconds = time.perf_counter() - start
    cpu1, threads1, seen = cpu_by_kind(), jvm_threads(), workers.stop()
    if spy is not None:
        for process in (spy, driver_spy):
            process.send_signal(signal.SIGINT)
            process.wait()
    time.sleep(1)
    print(f"{seconds:.2f} s, {figures} ({load()})")
    print(
        "CPU s: " + ", ".join(f"{k} {cpu1[k] - cpu0[k]:.1f}" for k in cpu0),
        f"total {sum(cpu1.values()) - sum(cpu0.values()):.1f}",
    )
    print(f"task peak {peak.task / 1024:.0f} MiB, JVM+workers {peak.jvm / 1024:.0f} MiB")
    print(f"Python worker processes seen: {len(seen)}")
    busy = sorted(((threads1[k] - threads0.get(k, 0.0), k) for k in threads1), reverse=True)
    print("JVM threads (CPU s): " + ", ".join(f"{k} {v:.1f}" for v, k in busy[:12] if v >= 0.05))
    rows = sorted((s for s in stages(spark) if s["stageId"] not in before_ids), key=lambda s: s["stageId"])
    print(f"{'stage':>5} {'tasks':>5} {'wall s':>7} {'run s':>7} {'jvm cpu':>7} {'gc s':>6} {'shuf w MiB':>10} "
          f"{'shuf r MiB':>10} name")  # fmt: skip
    total = [0.0, 0.0, 0.0]
    for s in rows:
        wall = 0.0
        if s.get("submissionTime") and s.get("completionTime"):
            fmt = "%Y-%m-%dT%H:%M:%S.%f%Z"
            wall = (
                datetime.datetime.strptime(s["completionTime"], fmt)
                - datetime.datetime.strptime(s["submissionTime"], fmt)
            ).total_seconds()
        run, cpu, gc = s["executorRunTime"] / 1e3, s["executorCpuTime"] / 1e9, s.get("jvmGcTime", 0) / 1e3
        total = [total[0] + run, total[1] + cpu, total[2] + gc]
        written, read = s["shuffleWriteBytes"] / 2**20, s["shuffleReadBytes"] / 2**20
        print(f"{s['stageId']:5} {s['numTasks']:5} {wall:7.2f} {run:7.2f} {cpu:7.2f} {gc:6.2f} "
              f"{written:10.1f} {read:10.1f} {s['name'][:50]}")  # fmt: skip
    print(f"total run {total[0]:.1f} s, JVM task CPU {total[1]:.1f} s, GC {total[2]:.1f} s")
    spark.stop()


if __name__ == "__main__":
    main()
