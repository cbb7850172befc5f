"""Deterministic generator of a large, realistically messy CSV for the benchmark (same seed -> same bytes)."""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

FIRST = ["john", "JANE", "Élodie", "李", "  mary ", "o'brien", "Zoë", "ahmed", "Anne-Marie", "björk"]
LAST = ["doe", "SMITH", "  dupont", "小龍", "garcía", "Müller", "o'neil", "jones  ", "lee", "van  dyke"]
STATUSES = ["active", "Active ", " PENDING", "pending", "inactive", "INACTIVE", "closed", ""]


def messy_row(rng: random.Random, i: int) -> list[str]:
    name = f"{rng.choice(FIRST)}{' ' * rng.randint(1, 3)}{rng.choice(LAST)}"
    email = f"user{i}@example.com"
    r = rng.random()
    if r < 0.02:
        email = f"user{i}@example"
    elif r < 0.03:
        email = ""
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    r = rng.random()
    if r < 0.70:
        date = f"{day:02d}-{month:02d}-2025"
    elif r < 0.95:
        date = f"2025-{month:02d}-{day:02d}"
    elif r < 0.98:
        date = "31-02-2025"
    else:
        date = ""
    cents = rng.randint(-5000, 500000)
    r = rng.random()
    if r < 0.80:
        amount = f"{cents / 100:.2f}"
    elif r < 0.92:
        amount = f"${cents / 100:,.2f}"
    elif r < 0.96:
        amount = f"{cents // 100}"
    elif r < 0.98:
        amount = ""
    else:
        amount = "abc"
    return [str(i), name, email, date, amount, rng.choice(STATUSES)]


def generate(path: Path, rows: int, seed: int = 20250401) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "name", "email", "date", "amount", "status"])
        previous: list[str] | None = None
        for i in range(1, rows + 1):
            r = rng.random()
            if previous is not None and r < 0.005:
                writer.writerow(previous)  # exact duplicate row
            elif r < 0.006:
                handle.write(f"{i},truncated row,user{i}@example.com\n")  # too few fields
            else:
                previous = messy_row(rng, i)
                writer.writerow(previous)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(generate(args.path, args.rows))
