"""A big upload over many Spark tasks: the same rules (reader.py, rules.py, output.py) on line-aligned byte ranges,
with Spark moving rows between the phases. No task holds more than a share of the upload.

1. Scan (one task per byte range): line terminators counted, lines with an odd number of '"' found. The driver
   stitches the ranges (a line may cross a range's end), pairs the odd lines into multi-line records exactly as
   reader.split_records does for a whole upload (`reader.pair_odd_lines`, reading only those spans), and moves
   each range's start to a line start that is not inside a record. Line numbers come from the counts.
2. Parse and clean (one task per range): records, fields, the row-local rules; each range writes its rejected rows
   as its own part file (in parallel). Part k's cleaned rows stay cached in partition k as two compressed Arrow IPC
   blocks (narrow: line number, id, sort keys, amounts; wide: the rest), with what the task took from its rows on
   the way (a sample of sort keys, its ids by bucket for 3a). Later phases shuffle only narrow columns (`_shuffle`)
   and send their answers back to the part holding the line (the cached parts zipped with them).
3. Exact duplicates and duplicate ids, by the functions rules.process uses: (a) ids and line numbers shuffled by id;
   the lines of the rows whose id repeats go back to their parts; (b) those rows and the rows without an id send
   their row keys (rules.row_key) by id (by key when there is none): exact duplicates share their id, so a bucket
   holds every row of its ids. rules.first_by_line compares whole keys (a hash only picks the bucket) and
   rules.repeated flags duplicate ids; the flags go to the rows' running-total buckets.
4. Running totals by a two-phase prefix sum: the rows' sort keys and amounts range-partitioned in running-total
   order, with the flags (exact duplicates dropped), and sorted; each bucket's per-status sums (pass 1) give its
   offsets, added to its own running sums (`rules.running_totals`) in pass 2.
5. Output: each kept row's running total and duplicate-id flag go back to its part, which writes its cached rows in
   line order (a row given no total was an exact duplicate) as one part file (CSV and Parquet), in parallel; the
   driver writes `_SUCCESS` last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csv_ingest.contract import output
from csv_ingest.contract.documents import FileResult
from csv_ingest.engine import reader, rules, worker
from csv_ingest.io import storage
from csv_ingest.io.zip_imports import on_worker

# Uploads bigger than this are split; a range is about RANGE_BYTES.
SPLIT_BYTES = 256 * 1024 * 1024
RANGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Scan:
    """What a range [start, end) holds: its terminators (count, first, last), the quotes before its first and
    after its last terminator, and its whole lines with an odd number of quotes (start, end, next line start)."""

    start: int
    end: int
    terminators: int
    first_terminator: int  # -1 when none
    last_terminator: int
    first_line_end: int  # where the line ending at the first terminator ends (its CR excluded)
    quotes_before: int
    quotes_after: int
    odd_lines: list[tuple[int, int, int, int]]  # (local line number from 1, start, end, next start)


@on_worker
def scan_range(uri: str, start: int, end: int, size: int, etag: str) -> Scan:
    # one byte more: a CR's LF. Every read of an upload names its version (If-Match on its ETag): a task never reads
    # the bytes of a version uploaded after the run was planned (storage.Changed instead).
    data = storage.read_bytes(uri, limit=min(end + 1, size) - start, if_etag=etag, start=start)
    buf = np.frombuffer(data, np.uint8)
    n = end - start
    has_cr = b"\r" in data
    if has_cr:
        lf = buf == 10
        cr = buf == 13
        lone_cr = cr.copy()
        lone_cr[:-1] &= ~lf[1:]
        terms = np.flatnonzero((lf | lone_cr)[:n])
    else:  # every line ends at a LF: one pass
        terms = np.flatnonzero(buf[:n] == 10)
    quotes = np.flatnonzero(buf[:n] == 34)
    if not len(terms):
        return Scan(start, end, 0, -1, -1, -1, len(quotes), 0, [])
    line_ends = terms - (lf[terms] & (terms > 0) & cr[np.maximum(terms - 1, 0)]) if has_cr else terms
    per_line = np.searchsorted(quotes, line_ends[1:]) - np.searchsorted(quotes, terms[:-1] + 1)
    odd = np.flatnonzero(per_line % 2 == 1)
    odd_lines = [(int(i) + 1, start + int(terms[i]) + 1, start + int(line_ends[i + 1]), start + int(terms[i + 1]) + 1)
                 for i in odd]  # fmt: skip
    return Scan(
        start,
        end,
        len(terms),
        start + int(terms[0]),
        start + int(terms[-1]),
        start + int(line_ends[0]),
        int(np.searchsorted(quotes, line_ends[0])),
        len(quotes) - int(np.searchsorted(quotes, terms[-1] + 1)),
        odd_lines,
    )


@dataclass(frozen=True)
class Part:
    """One range of phase 2: bytes [start, end), its first line's index, its multi-line records (local indexes)."""

    index: int
    start: int
    end: int
    first_line: int
    merged: tuple[tuple[int, int], ...]


SPAN_READ_BYTES = 8 << 20


def plan_parts(scans: list[Scan], size: int, uri: str, field_count: int, etag: str) -> list[Part]:
    """Stitches the scans: the odd lines of the whole upload (global line indexes), their pairing into records,
    and each range's first line start moved past any record it falls inside."""
    odd: list[tuple[int, int, int, int]] = []  # (line index, start, end, next start)
    line, line_start, carried = 0, 0, 0  # the open line: its index, start, quotes so far
    starts: list[tuple[int, int]] = []  # (line index, byte) of the first line starting in each range
    for s in scans:
        if line_start >= s.start:
            starts.append((line, line_start))
        if s.terminators == 0:
            carried += s.quotes_before
            continue
        if (carried + s.quotes_before) % 2 == 1:
            odd.append((line, line_start, s.first_line_end, s.first_terminator + 1))
        if line_start < s.start and s.first_terminator + 1 < s.end:
            starts.append((line + 1, s.first_terminator + 1))
        odd += [(line + i, a, b, c) for i, a, b, c in s.odd_lines]
        line += s.terminators
        line_start, carried = s.last_terminator + 1, s.quotes_after
    if line_start < size and carried % 2 == 1:
        odd.append((line, line_start, size, size))
    by_line = {i: (a, b, c) for i, a, b, c in odd}
    start, data = 0, b""  # the bytes last read (the pairing asks for spans in order) and where they start

    def span_text(a: int, b: int) -> str:
        # An upload's odd lines may be millions (a stray quote on every line): their spans are read a window of
        # SPAN_READ_BYTES at a time (one GET each), never one GET per span.
        nonlocal start, data
        lo, hi = by_line[a][0], by_line[b][1]
        if not (start <= lo and hi <= start + len(data)):
            limit = min(max(hi - lo, SPAN_READ_BYTES), size - lo)
            start, data = lo, storage.read_bytes(uri, limit=limit, if_etag=etag, start=lo)
        return data[lo - start : hi - start].decode("utf-8", "replace")

    merged = reader.pair_odd_lines([i for i, *_ in odd if i > 0], span_text, field_count)
    inside = {i: (a, b) for a, b in merged for i in range(a + 1, b + 1)}
    bounds: list[tuple[int, int]] = []
    for index, byte in starts:
        if byte >= size:
            continue
        if index in inside:  # inside a multi-line record: the range starts after it
            b = inside[index][1]
            index, byte = b + 1, by_line[b][2]
            if byte >= size:
                continue
        if not bounds or byte > bounds[-1][1]:
            bounds.append((index, byte))
    parts = []
    for k, (index, byte) in enumerate(bounds):
        end = bounds[k + 1][1] if k + 1 < len(bounds) else size
        last = bounds[k + 1][0] if k + 1 < len(bounds) else None
        local = tuple((a - index, b - index) for a, b in merged if a >= index and (last is None or a < last))
        parts.append(Part(k, byte, end, index, local))
    return parts


# Rows between phases (shuffled and cached) travel as Arrow IPC compressed with zstd: the bytes Python hands to the
# JVM, the JVM writes to shuffle files and caches are 4x fewer (1M cleaned rows: 101 -> 24 MiB) for ~0.3 s of CPU.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _table(blocks: Iterable[bytes]) -> pa.Table | None:
    tables = [pa.ipc.open_stream(b).read_all() for b in blocks]
    return pa.concat_tables(tables).combine_chunks() if tables else None


def _hash(values: pa.Array) -> np.ndarray:
    """A hash of each string (uint64), the same in every task; nulls hash to 0."""
    values = pc.fill_null(values.cast(pa.large_string()), "")
    offsets = np.frombuffer(values.buffers()[1], np.int64)[values.offset : values.offset + len(values) + 1]
    data = values.buffers()[2]
    h = np.zeros(len(values), np.uint64)
    if data is None or offsets[-1] == offsets[0]:
        return h
    chars = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]].astype(np.uint64)
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    position = np.arange(len(chars), dtype=np.uint64) - np.repeat(starts, lengths).astype(np.uint64)
    with np.errstate(over="ignore"):
        mixed = chars * (position * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019))
        nonempty = lengths > 0
        h[nonempty] = np.add.reduceat(mixed, starts[nonempty])
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    return h


def _split_by(table: pa.Table, which: np.ndarray, buckets: int, tag=None) -> list[tuple[int, object]]:
    """The rows of `table` grouped by their bucket (`which`): (bucket, IPC block) per non-empty bucket, or (bucket,
    (tag, block)) when a tag says which kind of rows a block holds."""
    small = which.astype(np.uint16) if buckets <= 1 << 16 else which  # numpy sorts 16-bit keys by radix: 7x faster
    order = np.argsort(small, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(buckets + 1))
    grouped = table.take(pa.array(order))  # rows by bucket: one take, then a slice per bucket
    out: list[tuple[int, object]] = []
    for b in range(buckets):
        if bounds[b + 1] > bounds[b]:
            block = _ipc(grouped.slice(int(bounds[b]), int(bounds[b + 1] - bounds[b])))
            out.append((b, block if tag is None else (tag, block)))
    return out


def _one_per_batch(rdd):
    """`rdd` (one element per partition) handed to the JVM as batches of one element. RDD.zip pairs two RDDs batch by
    batch: with Spark's default (auto-batched) serializer it first re-serialises both sides, an extra pass through a
    Python worker over each (the whole cached part, sent to Python and back, before the zipped task reads it again);
    two RDDs written as batches of one zip as they are."""
    from pyspark import serializers

    pickled = getattr(serializers, "CPickleSerializer", None) or serializers.PickleSerializer
    return rdd._reserialize(serializers.BatchedSerializer(pickled(), 1))


def _zip(cached, answers):
    """The cached parts (_one_per_batch) zipped with answers that have one element per partition (_shuffle)."""
    return cached.zip(_one_per_batch(answers))


def _shuffle(rdd, buckets: int):
    """An RDD of lists of (bucket, block) -> an RDD with exactly one element per bucket: (bucket, its blocks), in
    bucket order (so that it zips with the cleaned parts, one per partition)."""
    return (
        rdd.flatMap(lambda pairs: pairs)
        .partitionBy(buckets, lambda b: b)
        .mapPartitionsWithIndex(lambda i, pairs: [(i, [block for _, block in pairs])], preservesPartitioning=True)
    )


# Phase 2's rows, cached per part in two IPC blocks: the narrow columns every later phase reads (ids, sort keys,
# amounts) and the wide ones only the exact-duplicate check (a few rows) and the part's own output read.
NARROW = ("line_number", "id", "status", "date", "id_number", "units", "nanos", "amount_valid")
WIDE = ("name", "email", "email_valid", "mask", "amount_text", "date_trimmed", "amount_trimmed")


@on_worker
def _packed(index: int, cleaned: tuple[pa.Table, int, int], buckets: int) -> tuple:
    """Phase 2's result for one part, as cached: (index, narrow IPC block, wide IPC block, rows read, rows
    rejected, its sample of sort keys, its phase-3a blocks of ids by bucket): the sample and the ids are taken here,
    while the rows are at hand, not by a later pass over the cached part."""
    table, rows_read, rejected = cleaned
    narrow = table.select(list(NARROW))
    return (index, _ipc(narrow), _ipc(table.select(list(WIDE))), rows_read, rejected, _sample(narrow),
            _ids_by_bucket(narrow, buckets))  # fmt: skip


SAMPLE_PER_PART = 20


def _sample(narrow: pa.Table) -> bytes:
    """The sort keys of SAMPLE_PER_PART of a part's rows, evenly spread (for the running totals' ranges)."""
    picks = np.unique(np.linspace(0, max(narrow.num_rows - 1, 0), SAMPLE_PER_PART).astype(np.int64))
    return _ipc(_sort_keys(narrow).take(pa.array(picks[picks < narrow.num_rows])))


def _counts_and_sample(packed: tuple) -> tuple[int, int, bytes]:
    """A cached part's rows read, rows rejected and sample."""
    return packed[3], packed[4], packed[5]


def _clean_table(part: Part, task: worker.UploadTask, uri: str, rejected_uri: str) -> tuple[pa.Table, int, int]:
    """Phase 2 for one part: records, fields, row rules; writes the part's rejected rows; returns the cleaned rows
    (with their line numbers and the values only the row key uses) and the part's rows read and rejected."""
    entry = task.entry
    data = storage.read_bytes(uri, limit=part.end - part.start, if_etag=entry.etag, start=part.start)
    records = reader.split_records(
        data, entry.key, task.field_count, task.fallback_encoding, part.first_line, list(part.merged)
    )
    del data
    parsed = reader.parse_fields(records.text, task.field_count, dict(task.positions))
    corrupt = parsed.corrupt
    bad = pc.filter(records.text, corrupt)
    reasons = reader.reason(bad, parsed.field_count[corrupt.to_numpy(zero_copy_only=False)], task.field_count)
    rejected = worker.rejected_table(bad, pc.filter(records.line_number, corrupt), reasons, entry.key)
    if records.undecodable:
        lines, raw, why = zip(*records.undecodable, strict=True)
        extra = worker.rejected_table(pa.array(raw, pa.string()), pa.array(lines), pa.array(why), entry.key)
        rejected = pa.concat_tables([rejected, extra]).sort_by("line_number")
    cells = output.rejected_text(rejected)
    storage.write_streamed(
        storage.join_uri(rejected_uri, f"part-{part.index:05d}.csv"),
        lambda sink: output.write_csv(cells, sink),
        "text/csv",
    )
    good = pc.invert(corrupt)
    raw = {c: pc.filter(parsed.values[c], good) for c in rules.REQUIRED_COLUMNS}
    c = rules.clean(raw, task.date_formats)
    table = pa.table(
        {
            "line_number": pc.filter(records.line_number, good),
            "id": c.id,
            "name": c.name,
            "email": c.email,
            "email_valid": c.email_valid,
            "date": c.date,
            "units": pa.array(c.amounts.units, pa.int64()),
            "nanos": pa.array(c.amounts.nanos, pa.int64()),
            "amount_valid": pa.array(c.amounts.valid),
            "status": c.status,
            "id_number": c.id_number,
            "mask": pa.array(c.mask, pa.int64()),
            # what exact duplicates are compared on, besides the values above (rules.row_key)
            "amount_text": c.amount_text,
            "date_trimmed": c.date_trimmed,
            "amount_trimmed": c.amount_trimmed,
        }
    )
    return table, records.rows_read, rejected.num_rows


def _sort_keys(table: pa.Table) -> pa.Table:
    return table.select(list(rules.RUNNING_TOTAL_ORDER))


def _range_bucket(table: pa.Table, boundaries: pa.Table) -> np.ndarray:
    """Each row's bucket in running-total order: how many boundary rows sort before it or are it (a boundary is a
    sampled row: the row itself counts its own boundary)."""
    b = boundaries.num_rows
    both = pa.concat_tables([boundaries, _sort_keys(table)])  # boundaries first: a row after its own boundary
    columns = [both.column(c).combine_chunks() for c in rules.RUNNING_TOTAL_ORDER]
    key = rules.running_total_key(*columns)
    if key is not None:  # one int64 per row in running-total order: a binary search among the boundaries' keys
        return np.searchsorted(np.sort(key[:b]), key[b:], side="right")
    ranks = np.empty(len(both), np.int64)
    order = rules.running_total_order(*columns)  # stable: a row equal to a boundary sorts after it
    ranks[order] = np.arange(len(both))
    is_boundary = np.zeros(len(both), bool)
    is_boundary[:b] = True
    boundaries_before = np.cumsum(is_boundary[order])  # in sorted order: boundaries up to and including here
    return boundaries_before[ranks[b:]]


def _mix(values: np.ndarray) -> np.ndarray:
    """A hash of each int64 (uint64; splitmix64's finaliser: consecutive numbers spread over all buckets)."""
    h = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _id_bucket(values: pa.Array, buckets: int, numbers: pa.Array | None = None) -> np.ndarray:
    """Each value's bucket, the same in every task for equal values. With `numbers` (the ids' id_number, a function
    of the id: null unless it is a whole number): a whole-number id by its number (_mix), any other by _hash."""
    if numbers is None:
        return (_hash(values) % np.uint64(buckets)).astype(np.int64)
    numeric = pc.is_valid(numbers).to_numpy(zero_copy_only=False)
    which = (_mix(pc.fill_null(numbers, 0).to_numpy()) % np.uint64(buckets)).astype(np.int64)
    if not numeric.all():
        others = ~numeric
        which[others] = (_hash(values.filter(pa.array(others))) % np.uint64(buckets)).astype(np.int64)
    return which


def _ids_by_bucket(narrow: pa.Table, buckets: int) -> list[tuple[int, bytes]]:
    """Phase 3a, one part: (id, line number, id_number) of its rows that have an id, by id (rows without one are
    compared in phase 3b in any case; the id_number makes grouping whole-number ids cheap: rules.id_codes)."""
    t = narrow.select(["id", "line_number", "id_number"])
    t = t.filter(pc.is_valid(t.column("id")))
    which = _id_bucket(t.column("id").combine_chunks(), buckets, t.column("id_number").combine_chunks())
    return _split_by(t, which, buckets)


@on_worker
def _repeated_id_lines(pair, part_firsts: np.ndarray) -> list[tuple[int, bytes]]:
    """Phase 3a, one id bucket: the line numbers of the rows whose id is on more than one row (the only rows, with
    those without an id, that can be exact duplicates: equal rows share their id), sent to the parts holding them."""
    t = _table(pair[1])
    if t is None or not t.num_rows:
        return []
    ids, numbers = t.column("id").combine_chunks(), t.column("id_number").combine_chunks()
    repeated = rules.repeated(rules.id_groups(ids, None, numbers))
    lines = t.column("line_number").to_numpy()[repeated]
    return _split_by(pa.table({"line_number": lines}), _part_of(lines, part_firsts), len(part_firsts))


def _part_of(lines: np.ndarray, part_firsts: np.ndarray) -> np.ndarray:
    return np.searchsorted(part_firsts, lines, side="right") - 1


def _cleaned_rows(narrow: pa.Table, wide: pa.Table) -> rules.Cleaned:
    column = {name: narrow.column(name).combine_chunks() for name in NARROW}
    column |= {name: wide.column(name).combine_chunks() for name in WIDE}
    return rules.Cleaned(
        **{c: column[c] for c in ("id", "name", "email", "email_valid", "date", "status", "id_number")},
        amounts=_amounts(narrow),
        mask=column["mask"].to_numpy(),
        amount_text=column["amount_text"],
        date_trimmed=column["date_trimmed"],
        amount_trimmed=column["amount_trimmed"],
    )


@on_worker
def _candidates(zipped, buckets: int, boundaries: pa.Table | None) -> list[tuple[int, bytes]]:
    """Phase 3b, one part: the row keys (rules.row_key) of its rows whose id repeats or is missing, with their ids,
    line numbers and running-total buckets, by id (rows without an id: by key; exact duplicates share both)."""
    packed, (_, blocks) = zipped
    narrow = _table([packed[1]])
    asked = _table(blocks)
    lines = narrow.column("line_number").to_numpy()
    maybe = pc.is_null(narrow.column("id")).to_numpy(zero_copy_only=False)
    if asked is not None:
        maybe |= np.isin(lines, asked.column("line_number").to_numpy())
    take = np.flatnonzero(maybe)
    if not len(take):
        return []
    rows = _cleaned_rows(narrow, _table([packed[2]]))
    key = rules.row_key(rows, pa.array(take))
    ids = pc.take(rows.id, pa.array(take))
    numbers = pc.take(rows.id_number, pa.array(take))
    which = np.where(
        pc.is_valid(ids).to_numpy(zero_copy_only=False), _id_bucket(ids, buckets, numbers), _id_bucket(key, buckets)
    )
    t = pa.table({"line_number": pa.array(lines[take]), "id": ids, "key": key})
    t = t.append_column("bucket", pa.array(_range_bucket_of(narrow.take(pa.array(take)), boundaries)))
    return _split_by(t, which, buckets)


def _range_bucket_of(t: pa.Table, boundaries: pa.Table | None) -> np.ndarray:
    return np.zeros(t.num_rows, np.int64) if boundaries is None else _range_bucket(t, boundaries)


DROPPED, DUPLICATE_ID = 1, 2


@on_worker
def _duplicate_flags(pair, buckets: int) -> list[tuple[int, tuple[int, bytes]]]:
    """Phase 3b, one id bucket: exact duplicates (rules.first_by_line on the row keys: these rows hold every row of
    their ids) and duplicate ids among the kept rows (rules.repeated), as flags (DROPPED, DUPLICATE_ID) of the rows
    concerned, sent to their running-total buckets."""
    t = _table(pair[1])
    if t is None or not t.num_rows:
        return []
    groups = rules.id_groups(t.column("id").combine_chunks())
    kept = rules.first_by_line(t.column("key").combine_chunks(), t.column("line_number"))
    flag = np.where(kept, 0, DROPPED)
    flag[np.flatnonzero(kept)[rules.repeated(groups[kept])]] = DUPLICATE_ID
    flagged = t.select(["line_number"]).append_column("flag", pa.array(flag, pa.int64())).filter(pa.array(flag > 0))
    return _split_by(flagged, t.column("bucket").to_numpy()[flag > 0], buckets, tag=1)


@on_worker
def _rows_by_range(packed, buckets: int, boundaries: pa.Table | None) -> list[tuple[int, tuple[int, bytes]]]:
    """Phase 4, one part: its rows' narrow columns (sort keys, amounts) by running-total bucket."""
    t = _table([packed[1]])
    return _split_by(t, _range_bucket_of(t, boundaries), buckets, tag=0)


@on_worker
def _sorted_for_totals(pair) -> tuple[int, bytes]:
    """Phase 4, one running-total bucket: its rows without the exact duplicates, with their duplicate-id flag, in
    running-total order."""
    bucket, blocks = pair
    rows = _table([b for tag, b in blocks if tag == 0])
    flags = _table([b for tag, b in blocks if tag == 1])
    if rows is None:
        return bucket, b""
    lines = rows.column("line_number").to_numpy()
    dup = np.zeros(len(lines), bool)
    if flags is not None:
        flagged, flag = flags.column("line_number").to_numpy(), flags.column("flag").to_numpy()
        rows = rows.filter(pa.array(~np.isin(lines, flagged[flag == DROPPED])))
        dup = np.isin(rows.column("line_number").to_numpy(), flagged[flag == DUPLICATE_ID])
    rows = rows.append_column("duplicate_id", pa.array(dup))
    order = rules.running_total_order(*[rows.column(c).combine_chunks() for c in rules.RUNNING_TOTAL_ORDER])
    return bucket, _ipc(rows.take(pa.array(order)))


@on_worker
def _ranged(pair) -> tuple[int, pa.Table | None]:
    bucket, block = pair
    return bucket, _table([block]) if block else None


def process_split(spark, task: worker.UploadTask, ship: bool) -> FileResult:
    """One big upload over the cluster (see the module's docstring); returns its FileResult."""
    from pyspark import StorageLevel

    entry = task.entry
    uri = storage.join_uri(task.data_root, entry.key)
    sc = spark.sparkContext
    size = entry.size
    ranges = [(b, min(b + RANGE_BYTES, size)) for b in range(0, size, RANGE_BYTES)]
    etag = entry.etag
    scans = sc.parallelize(ranges, len(ranges)).map(lambda r: scan_range(uri, r[0], r[1], size, etag)).collect()
    parts = plan_parts(sorted(scans, key=lambda s: s.start), size, uri, task.field_count, etag)
    rejected_uri = storage.join_uri(task.output_root, entry.rejected_prefix)
    csv_uri = storage.join_uri(task.output_root, entry.output_prefix)
    parquet_uri = storage.join_uri(task.output_root, entry.parquet_prefix) if entry.parquet_prefix else None
    for folder in (rejected_uri, csv_uri, parquet_uri):
        if folder:
            storage.delete_folder(folder)
    n = len(parts)
    part_firsts = np.array([p.first_line + 1 for p in parts], np.int64)  # each part's first line number (1-based)

    # 2. Parse and clean, one task per part (part k in partition k). The cleaned rows stay there, cached (as
    # compressed IPC blocks, _packed); later phases move only narrow columns and send their answers back by line.
    # Cached on the executors' local disk, not in the JVM's heap: the blocks are only bytes to the JVM (read back
    # whole a few times), and held in the heap they kept its garbage collector busy (1 GiB upload: ~6 CPU s of G1).
    cleaned = sc.parallelize(parts, n).map(lambda p: _packed(p.index, _clean_table(p, task, uri, rejected_uri), n))
    cleaned = _one_per_batch(cleaned).persist(StorageLevel.DISK_ONLY)
    ranged = None
    try:
        # Each part's counts and a sample of its sort keys (for the running totals' ranges), in one pass.
        firsts = cleaned.map(_counts_and_sample).collect()
        rows_read, rejected = sum(f[0] for f in firsts), sum(f[1] for f in firsts)
        keys = _table([f[2] for f in firsts])
        if keys is None or keys.num_rows == 0:
            boundaries = None
        else:  # taken before duplicates are removed: they only need to cut the rows into about equal ranges
            in_order = rules.running_total_order(*[keys.column(c).combine_chunks() for c in rules.RUNNING_TOTAL_ORDER])
            picks = [int(in_order[len(in_order) * k // n]) for k in range(1, n)]
            boundaries = keys.take(pa.array(picks, pa.int64()))

        # 3a. Ids and line numbers by id: the lines of the rows whose id repeats go back to their parts.
        asked = _shuffle(cleaned.map(lambda t: t[6]), n).map(lambda pair: _repeated_id_lines(pair, part_firsts))
        # 3b. Those rows and the rows without an id: their row keys by id, exact duplicates and duplicate ids decided
        # there (rules.first_by_line, rules.repeated), the flags sent to the rows' running-total buckets.
        keyed = _zip(cleaned, _shuffle(asked, n)).map(lambda z: _candidates(z, n, boundaries))
        flags = _shuffle(keyed, n).map(lambda pair: _duplicate_flags(pair, n))
        # 4. Running totals: the rows' sort keys and amounts range-partitioned in running-total order (with the
        # flags: exact duplicates dropped, duplicate ids marked) and sorted, then a two-phase prefix sum per status.
        by_range = cleaned.map(lambda t: _rows_by_range(t, n, boundaries)).union(flags)
        ranged = _shuffle(by_range, n).map(_sorted_for_totals).persist(StorageLevel.DISK_ONLY)
        sums = ranged.map(_ranged).flatMap(_status_sums).collect()
        offsets = _offsets(sums)
        # 5. Output: each row's total (and duplicate-id flag; a kept row has a total) sent back to its part, which
        # writes its own cleaned rows in line order as one part file.
        totals = ranged.map(_ranged).map(lambda pair: _totals_by_part(pair, offsets, part_firsts))
        written = _zip(cleaned, _shuffle(totals, n)).map(lambda z: _write_part(z, task, csv_uri, parquet_uri)).collect()
        written = [w for w in written if w[0]]
    finally:
        if ranged is not None:
            ranged.unpersist()
        cleaned.unpersist()
    if not written:  # no processed rows at all: a header-only CSV (and an empty Parquet file), as for any upload
        written = [_write_processed(0, _processed(pa.table({c: pa.array([], t) for c, t in _CLEAN_TYPES}),
                                                  pa.array([], pa.string())), task, csv_uri, parquet_uri)]  # fmt: skip
    for folder in (rejected_uri, parquet_uri, csv_uri):  # _SUCCESS last, the processed CSV's last of all
        if folder:
            storage.write_text(storage.join_uri(folder, "_SUCCESS"), "", "text/plain")
    result = FileResult(entry)
    processed_rows = sum(r[0] for r in written)
    issues = np.sum([r[1] for r in written], axis=0) if written else np.zeros(len(rules.ISSUE_KINDS), np.int64)
    result.rows_read = rows_read
    result.rows_rejected = rejected
    result.rows_processed = processed_rows
    result.duplicates_removed = rows_read - rejected - processed_rows
    result.quality_issues = {k: int(v) for k, v in zip(rules.ISSUE_KINDS, issues, strict=True) if v}
    return result


_CLEAN_TYPES = (
    ("line_number", pa.int64()),
    ("id", pa.string()),
    ("name", pa.string()),
    ("email", pa.string()),
    ("email_valid", pa.bool_()),
    ("date", pa.date32()),
    ("units", pa.int64()),
    ("nanos", pa.int64()),
    ("amount_valid", pa.bool_()),
    ("amount_text", pa.string()),
    ("status", pa.string()),
    ("mask", pa.int64()),
)


def _amounts(t: pa.Table) -> rules.Amounts:
    return rules.Amounts(
        t.column("units").to_numpy(), t.column("nanos").to_numpy(), t.column("amount_valid").to_numpy()
    )


def _status_codes(t: pa.Table) -> tuple[list[str | None], np.ndarray]:
    """The distinct statuses of a bucket (None last, for a missing status) and each row's index into them."""
    encoded = pc.dictionary_encode(t.column("status").combine_chunks())
    names = [*encoded.dictionary.to_pylist(), None]
    codes = pc.fill_null(encoded.indices, len(names) - 1).to_numpy(zero_copy_only=False).astype(np.int64)
    return names, codes


def _exact_sum(values: np.ndarray) -> int:
    """The exact sum of int64 values (int64 arithmetic when it cannot overflow, Python integers otherwise)."""
    if not len(values):
        return 0
    if int(np.abs(values).max()) < 2**62 // len(values):
        return int(values.sum())
    return int(values.astype(object).sum())


def _status_sums(pair: tuple[int, pa.Table]) -> list[tuple[int, str | None, int, int]]:
    """Pass 1: per status of this bucket, the exact sum of its amounts (in nanos) and how many there are."""
    bucket, t = pair
    if t is None or not t.num_rows:
        return []
    a = _amounts(t)
    names, codes = _status_codes(t)
    out = []
    for code in np.unique(codes):
        rows = (codes == code) & a.valid
        total = _exact_sum(a.units[rows]) * rules.NANOS + _exact_sum(a.nanos[rows])
        out.append((bucket, names[code], total, int(rows.sum())))
    return out


def _offsets(sums: list[tuple[int, str | None, int, int]]) -> dict[tuple[int, str | None], tuple[int, int]]:
    """Per (bucket, status): the exact sum (nanos) and count of that status's amounts in the buckets before it."""
    offsets = {}
    running: dict[str | None, tuple[int, int]] = {}
    for bucket, status, total, count in sorted(sums, key=lambda r: r[0]):
        before = running.get(status, (0, 0))
        offsets[(bucket, status)] = before
        running[status] = (before[0] + total, before[1] + count)
    return offsets


def _running_total_text(pair: tuple[int, pa.Table], offsets) -> pa.Array:
    """Pass 2: the bucket's running sums (rules.running_totals) plus its offsets, as the output's text."""
    bucket, t = pair
    a = _amounts(t)
    status = t.column("status").combine_chunks()
    units, nanos, has = rules.running_totals(status, np.arange(t.num_rows), a)
    names, codes = _status_codes(t)
    before = [offsets.get((bucket, s), (0, 0)) for s in names]
    counted = has | (np.array([b[1] for b in before], np.int64)[codes] > 0)
    # Each offset (exact nanos) as whole units + nanos sharing its sign, added to the rows' sums, then carried so
    # that the units and nanos of each total share its sign (as rules.running_totals gives them).
    off_units = [abs(b[0]) // rules.NANOS * (-1 if b[0] < 0 else 1) for b in before]
    off_nanos = [b[0] - u * rules.NANOS for b, u in zip(before, off_units, strict=True)]
    if max(map(abs, off_units)) < 2**61 and (not len(units) or int(np.abs(units).max()) < 2**61):
        carry, frac = np.divmod(nanos + np.array(off_nanos, np.int64)[codes], rules.NANOS)
        whole = units + np.array(off_units, np.int64)[codes] + carry
        negative = (whole < 0) & (frac > 0)
        whole = np.where(negative, whole + 1, whole)
        frac = np.where(negative, frac - rules.NANOS, frac)
    else:  # totals beyond int64 (never seen in real data): Python integers
        total = (
            units.astype(object) * rules.NANOS
            + nanos.astype(object)
            + np.array(off_units, object)[codes] * (rules.NANOS)
            + np.array(off_nanos, object)[codes]
        )
        sign = np.array([-1 if v < 0 else 1 for v in total], object)
        magnitude = np.abs(total)
        whole = magnitude // rules.NANOS * sign  # Python integers: the whole units may themselves pass int64
        frac = (magnitude % rules.NANOS * sign).astype(np.int64)
    return rules.decimal_text(whole, frac, counted)


def _with_totals(pair: tuple[int, pa.Table], offsets) -> pa.Table:
    """Pass 2 for one running-total bucket: each row's line number and running total (and duplicate-id flag)."""
    t = pair[1]
    out = pa.table(
        {"line_number": t.column("line_number"), "running_total_by_status": _running_total_text(pair, offsets)}
    )
    if "duplicate_id" in t.column_names:
        out = out.append_column("duplicate_id", t.column("duplicate_id"))
    return out


@on_worker
def _totals_by_part(pair, offsets, part_firsts: np.ndarray) -> list[tuple[int, bytes]]:
    if pair[1] is None or not pair[1].num_rows:
        return []
    t = _with_totals(pair, offsets)
    return _split_by(t, _part_of(t.column("line_number").to_numpy(), part_firsts), len(part_firsts))


def _processed(rows: pa.Table, total: pa.Array) -> pa.Table:
    """A part's kept rows (cleaned columns, in line order) and their totals as the processed columns (+ mask)."""
    a = _amounts(rows)
    return pa.table(
        {
            "line_number": rows.column("line_number"),
            "id": rows.column("id"),
            "name": rows.column("name"),
            "email": rows.column("email"),
            "email_valid": rows.column("email_valid"),
            "date": rows.column("date"),
            "amount": rows.column("amount_text"),  # as phase 2 made it (rules.clean: decimal_text of units, nanos)
            "amount_value": rules.decimal_values(a.units, a.nanos, a.valid, output.AMOUNT_TYPE),
            "amount_category": rules.amount_category(a),
            "status": rows.column("status"),
            "running_total_by_status": total,
            "mask": rows.column("mask"),
        }
    )


@on_worker
def _write_part(zipped, task: worker.UploadTask, csv_uri: str, parquet_uri: str | None):
    """Phase 5 for one part: its kept rows (those given a total), in line order, with their totals and duplicate-id
    flags, as part-<k>.csv (and .parquet); returns (rows, issue counts)."""
    packed, (_, blocks) = zipped
    totals = _table(blocks)
    if totals is None or not totals.num_rows:
        return 0, [0] * len(rules.ISSUE_KINDS)
    totals = totals.sort_by("line_number")
    narrow, wide = _table([packed[1]]), _table([packed[2]])
    rows = pa.table({**{c: narrow.column(c) for c in NARROW}, **{c: wide.column(c) for c in WIDE}})
    lines, given = narrow.column("line_number").to_numpy(), totals.column("line_number").to_numpy()  # given: sorted
    at = np.minimum(np.searchsorted(given, lines), len(given) - 1)
    kept = given[at] == lines
    rows = rows.filter(pa.array(kept))
    bit = 1 << rules.ISSUE_KINDS.index(rules.DUPLICATE_ID)
    dup = totals.column("duplicate_id").to_numpy(zero_copy_only=False).astype(np.int64) * bit
    rows = rows.set_column(rows.schema.get_field_index("mask"), "mask", pa.array(rows.column("mask").to_numpy() | dup))
    return _write_processed(packed[0], _processed(rows, totals.column("running_total_by_status")), task, csv_uri,
                            parquet_uri)  # fmt: skip


def _write_processed(part: int, t: pa.Table, task: worker.UploadTask, csv_uri: str, parquet_uri: str | None):
    """One part's processed rows (in line order, with their mask) as part-<k>.csv (and .parquet)."""
    n = t.num_rows
    mask = t.column("mask").to_numpy()
    counts = [int(c) for c in rules.issue_counts(mask, np.zeros(n, np.int64), 1)[0]]
    processed = t.drop_columns(["mask"]).append_column("data_quality_issues", rules.issue_text(mask))
    processed = processed.append_column("processing_date", rules.constant(task.processing_date, n))
    processed = processed.append_column("source_file", rules.constant(task.entry.key, n))
    if parquet_uri:
        typed = output.parquet_table(processed, task.processing_date)
        storage.write_streamed(
            storage.join_uri(parquet_uri, f"part-{part:05d}.parquet"),
            lambda sink: output.write_parquet(typed, sink),
            "application/vnd.apache.parquet",
        )
    cells = output.processed_text(processed)
    storage.write_streamed(
        storage.join_uri(csv_uri, f"part-{part:05d}.csv"), lambda sink: output.write_csv(cells, sink), "text/csv"
    )
    return n, counts
