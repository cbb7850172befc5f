"""Mutation testing of the rules and the contract (issue 13): mutmut 3 mutates MODULES, runs the Spark-free TESTS
against each mutant and prints, per module, how many mutants were killed, survived, timed out or had no test, and the
score. Not part of `npm test` or CI: it is CPU-bound for minutes, so it runs at nice 19.

    pnpm run mutation:glue                                   # all of MODULES
    .venv/bin/python glue/tests/mutation.py --only rules     # the modules whose path contains 'rules'
    .venv/bin/python glue/tests/mutation.py --fail-under 85  # exit 1 when the score is lower

Work directory: .mutmut/ at the repository root (gitignored). mutmut 3 copies its source tree into mutants/ and names
a mutant after the module's path with a leading `src.` dropped, so `.mutmut/src` is a link to glue/: the module
glue/csv_ingest/engine/rules.py is `csv_ingest.engine.rules`, as the tests import it. The tests' helper finds the
manifest vectors under `REPO/packages` (REPO is three levels up from the tests, i.e. mutants/ there), so they are
copied into mutants/packages.
A survivor's diff: `cd .mutmut && ../.venv/bin/mutmut show <name>`. The survivors accepted, and why, are listed in
docs/notes/mutmut.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GLUE = REPO / "glue"
WORK = REPO / ".mutmut"

# The code under mutation, relative to glue/: the rules and the output contract (manifest, stats, CSV/Parquet cells).
MODULES = ("csv_ingest/engine/rules.py", "csv_ingest/contract/documents.py", "csv_ingest/contract/output.py")
# The tests run against each mutant, relative to glue/: the fast ones (no Spark session; a mutant runs in seconds).
TESTS = (
    "tests/test_rules.py",
    "tests/test_contract.py",
    "tests/test_output_contract.py",
    "tests/test_reader.py",
    "tests/test_header.py",
    "tests/test_small_uploads.py",
)
# Files outside glue/ the tests read (copied into mutants/ at the same place relative to REPO there).
ALSO_COPY = ("packages/core/src/manifest/examples",)

# mutmut's exit codes per mutant (mutmut/stats.py) grouped as this report counts them.
DETECTED = {"killed": (1, 3), "timeout": (36, 24, -24, 152, 255), "type check": (37,)}
UNDETECTED = {"survived": (0,), "no tests": (5, 33)}


def status_of(exit_code: int | None) -> str:
    for status, codes in (DETECTED | UNDETECTED).items():
        if exit_code in codes:
            return status
    return "not checked" if exit_code is None else f"other ({exit_code})"


def prepare(modules: list[str], fresh: bool) -> None:
    """The work directory: src -> glue/, a copy of the files ALSO_COPY names, and mutmut's configuration."""
    if fresh and (WORK / "mutants").exists():
        shutil.rmtree(WORK / "mutants")
    WORK.mkdir(exist_ok=True)
    src = WORK / "src"
    if not src.is_symlink():
        src.symlink_to(os.path.relpath(GLUE, WORK), target_is_directory=True)
    for path in ALSO_COPY:  # a copy of just these files (mutmut copies them on into mutants/)
        shutil.rmtree(WORK / path, ignore_errors=True)
        shutil.copytree(REPO / path, WORK / path)
    lines = [
        "# Written by glue/tests/mutation.py on every run (edit MODULES / TESTS there).",
        "[mutmut]",
        "source_paths = src",
        "only_mutate =",
        *(f"    src/{m}" for m in modules),
        "also_copy =",
        *(f"    {p}" for p in ALSO_COPY),
        "pytest_add_cli_args_test_selection =",
        *(f"    src/{t}" for t in TESTS),
        "pytest_add_cli_args =",
        "    -p",
        "    no:cacheprovider",
    ]
    (WORK / "setup.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")


def results(modules: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per module: status -> the names of its mutants (from mutmut's .meta files)."""
    out = {}
    for module in modules:
        path = WORK / "mutants" / "src" / f"{module}.meta"
        if not path.exists():
            print(f"no results for glue/{module} (not in the last run)", file=sys.stderr)
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        by_status: dict[str, list[str]] = {}
        for name, code in sorted(meta["exit_code_by_key"].items()):
            by_status.setdefault(status_of(code), []).append(name)
        out[module] = by_status
    return out


def score(counts: Counter) -> float:
    detected = sum(counts[s] for s in DETECTED)
    total = sum(counts.values())
    return 100.0 * detected / total if total else 0.0


def report(found: dict[str, dict[str, list[str]]]) -> float:
    columns = [*DETECTED, *UNDETECTED]
    others = sorted({s for by in found.values() for s in by} - set(columns))
    columns += others
    width = max((len(m) for m in found), default=6) + 2
    print(f"{'module':<{width}}" + "".join(f"{c:>12}" for c in columns) + f"{'score':>9}")
    overall: Counter = Counter()
    for module, by_status in found.items():
        counts = Counter({s: len(names) for s, names in by_status.items()})
        overall += counts
        print(f"{module:<{width}}" + "".join(f"{counts[c]:>12}" for c in columns) + f"{score(counts):>8.1f}%")
    print(f"{'all':<{width}}" + "".join(f"{overall[c]:>12}" for c in columns) + f"{score(overall):>8.1f}%")
    undetected = [n for by in found.values() for s, names in by.items() if s not in DETECTED for n in names]
    if undetected:
        print(f"\nnot detected ({len(undetected)}; `cd .mutmut && ../.venv/bin/mutmut show <name>` shows one):")
        for name in undetected:
            print(f"  {name}")
    return score(overall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="mutate only the MODULES whose path has this")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", action="store_true", help="reuse .mutmut/mutants (mutmut's results so far)")
    parser.add_argument("--report", action="store_true", help="print the last run's results only")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 when the score is lower")
    args = parser.parse_args()
    modules = [m for m in MODULES if not args.only or any(o in m for o in args.only)]
    if not modules:
        parser.error(f"--only {args.only} matches none of {MODULES}")
    started = time.monotonic()
    if not args.report:
        prepare(modules, fresh=not args.keep)
        mutmut = Path(sys.executable).with_name("mutmut")
        command = ["nice", "-n", "19", str(mutmut), "run", "--max-children", str(args.max_children)]
        run = subprocess.run(command, cwd=WORK, check=False)
        if run.returncode != 0:
            print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
            return run.returncode
    found = results(modules)
    print(f"\nmutation testing of {', '.join(f'glue/{m}' for m in found)} with {len(TESTS)} test files")
    total = report(found)
    if not args.report:
        print(f"\nwall time {time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.2f}")
    return 1 if total < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
