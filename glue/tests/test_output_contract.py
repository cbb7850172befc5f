"""The output contract (glue/CONTRACT.md), pinned: a change to any of these bytes is a new OUTPUT_FORMAT."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support import PROCESSING_DATE, row

from csv_ingest.contract import output
from csv_ingest.engine import rules

CONTRACT = Path(__file__).resolve().parents[1] / "CONTRACT.md"


def processed_csv(rows_, source_file="input/t.csv"):
    raw = {c: pa.array([r[i] for r in rows_], pa.string()) for i, c in enumerate(rules.REQUIRED_COLUMNS)}
    table = rules.process(raw, pa.array(range(2, len(rows_) + 2), pa.int64()), source_file, PROCESSING_DATE).table
    return output.csv_bytes(output.processed_text(table)).decode("utf-8"), table


def test_the_contract_document_names_the_format_version_the_code_writes():
    assert output.OUTPUT_FORMAT == "csv-ingest-output/2"
    assert f"`format`: `{output.OUTPUT_FORMAT}`" in CONTRACT.read_text(encoding="utf-8")


def test_processed_csv_bytes_are_pinned():
    text, _ = processed_csv(
        [
            row(id_="1", name="ann lee", amount="$12,500,000.50", date="2025-04-01"),
            row(id_="2", name='Smith, "JJ"', amount="0.0001", status="Pending"),
            row(id_="3", name="x", email="bad", date="", amount=""),
        ]
    )
    assert text == (
        "id,name,email,email_valid,date,amount,amount_category,status,running_total_by_status,data_quality_issues,"
        "processing_date,source_file\n"
        "1,Ann Lee,ann@example.com,true,2025-04-01,12500000.5,high,active,12500000.5,,"
        "2026-04-01 10:00:30.000,input/t.csv\n"
        '2,"Smith, ""Jj""",ann@example.com,true,2025-04-01,0.0001,low,pending,0.0001,,'
        "2026-04-01 10:00:30.000,input/t.csv\n"
        "3,X,bad,false,,,,active,12500000.5,invalid_email;missing_date;missing_amount,"
        "2026-04-01 10:00:30.000,input/t.csv\n"
    )


def test_amounts_and_totals_are_plain_decimals_never_an_exponent():
    text, _ = processed_csv(
        [row(id_=str(i), amount=a) for i, a in enumerate(["99999999999999.999999999", "0.000000001"])]
    )
    cells = [line.split(",")[5] for line in text.splitlines()[1:]]
    assert cells == ["99999999999999.999999999", "0.000000001"]
    assert not re.search(r"\d[eE][+-]?\d", text)


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '"\'=HYPERLINK(""http://evil.example"",""x"")"'),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("+cmd", "'+cmd"),
        ("=1+1", "'=1+1"),
        ("-2+3", "'-2+3"),
        ("\tx", "'\tx"),
        ("\rx", '"\'\rx"'),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-", "'-"),
        ("a=b", "a=b"),
        ("1+1", "1+1"),
        ("/path", "/path"),
        ("", ""),
    ],
)
def test_formula_cells_get_a_leading_quote_unless_they_are_plain_numbers(cell, written):
    table = pa.table({"c": output.neutralise(pa.array([cell], pa.string()))})
    assert output.csv_bytes(table).decode() == f"c\n{written}\n"


def test_quoting_and_neutralising_look_at_a_sliced_columns_own_cells_only():
    # The byte checks that skip the regexes read the column's data buffer: a slice shares its parent's buffer.
    tail = pa.array(["c", "d", "=x", "\u00e9,"]).slice(2)
    head = pa.array(["c", "=x", "a,b", "d"]).slice(0, 2)
    assert output.csv_bytes(pa.table({"c": output.neutralise(tail)})).decode() == 'c\n\'=x\n"\u00e9,"\n'
    assert output.csv_bytes(pa.table({"c": output.neutralise(head)})).decode() == "c\nc\n'=x\n"
    assert output.csv_bytes(pa.table({"c": pa.array(["a,b", "ok"]).slice(1)})).decode() == "c\nok\n"
    assert output.csv_bytes(pa.table({"c": pa.array([None, "", "x"], pa.string())})).decode() == "c\n\n\nx\n"


def test_every_string_column_of_the_processed_csv_is_neutralised():
    hostile = ("=1+1", "@SUM(1+1)", "+cmd@example.com", "01-04-2025", "-12.5", "-2+3")
    text, _ = processed_csv([hostile])
    line = text.splitlines()[1].split(",")
    assert (line[0], line[1], line[2], line[5], line[7]) == (
        "'=1+1",
        "'@Sum(1+1)",
        "'+cmd@example.com",
        "-12.5",
        "'-2+3",
    )


def test_rejected_csv_neutralises_the_raw_line_and_reason():
    table = pa.table(
        {
            "source_file": ["input/t.csv"],
            "line_number": pa.array([7], pa.int64()),
            "reason": ["expected 6 fields as in the header, found 1"],
            "raw_line": ["=cmd|' /C calc'!A0"],
        }
    )
    assert output.csv_bytes(output.rejected_text(table)).decode() == (
        "source_file,line_number,reason,raw_line\n"
        "input/t.csv,7,\"expected 6 fields as in the header, found 1\",'=cmd|' /C calc'!A0\n"
    )


def test_parquet_has_typed_columns_and_values_as_they_are():
    _, table = processed_csv([row(name="=1+1", amount="1234.5", date="2025-04-01")])
    sink = io.BytesIO()
    output.write_parquet(output.parquet_table(table, PROCESSING_DATE), sink)
    back = pq.read_table(io.BytesIO(sink.getvalue()))
    assert back.schema == output.PARQUET_SCHEMA
    r = back.to_pylist()[0]
    assert (r["name"], str(r["amount"]), str(r["running_total_by_status"]), str(r["processing_date"])) == (
        "=1+1",
        "1234.500000000",
        "1234.500000000",
        "2026-04-01 10:00:30",
    )
    assert (r["date"].isoformat(), r["email_valid"], r["line_number"]) == ("2025-04-01", True, 2)
    assert pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata.row_group(0).column(0).compression == "SNAPPY"


def test_whole_amounts_keep_one_decimal_digit():
    text, _ = processed_csv([row(id_=str(i), amount=a) for i, a in enumerate(["150", "-0.25", "0", "-3"])])
    assert [line.split(",")[5] for line in text.splitlines()[1:]] == ["150.0", "-0.25", "0.0", "-3.0"]


def test_csv_rows_are_written_whole_whatever_the_chunk_size():
    table = pa.table({"a": ["1", "2", "3", "4", "5"], "b": ["x", "y,z", None, 'q"', ""]})
    sink = io.BytesIO()
    output.write_csv(table, sink, chunk_rows=2)
    assert sink.getvalue() == b'a,b\n1,x\n2,"y,z"\n3,\n4,"q"""\n5,\n'


def test_processing_date_is_written_in_utc_whatever_the_machine_time_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert output.timestamp_text("2026-04-01T12:00:30.250+02:00") == "2026-04-01 10:00:30.250"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_timestamps_are_written_as_athena_reads_them():
    assert output.timestamp_text("2026-04-01T10:00:30.123Z") == "2026-04-01 10:00:30.123"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}", output.timestamp_text(PROCESSING_DATE))


# --- write_csv_of: the chunked (and threaded) CSV writer. The expected bytes are built here from the rows with plain
# Python string operations (RFC 4180 minimal quoting), never from the writer's helpers.


def rfc4180(cell):
    """A cell as CONTRACT.md writes it: null -> empty; quoted, with '"' doubled, exactly when it holds , " CR or LF."""
    if cell is None:
        return ""
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell


def csv_text(columns, rows_):
    return "".join(",".join(rfc4180(c) for c in r) + "\n" for r in [columns, *rows_])


WRITER_ROWS = [
    ("1", "plain"),
    ("2", "a,b"),
    ("3", None),
    ("4", 'say "hi"'),
    ("5", ""),
    ("6", "two\nlines"),
    ("7", "cr\rhere"),
    ("8", "x"),
    ("9", "\u00e9t\u00e9"),
    ("10", "last"),
]


def writer_table(rows_):
    return pa.table({n: pa.array([r[i] for r in rows_], pa.string()) for i, n in enumerate(("n", "text"))})


def written_of(table, cells=lambda t: t, **kwargs):
    sink = io.BytesIO()
    output.write_csv_of(table, cells, sink, **kwargs)
    return sink.getvalue().decode("utf-8")


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("chunk_rows", [1, 3, 10, None])
def test_a_csv_written_on_any_threads_in_any_chunks_is_the_header_then_every_row_in_order(threads, chunk_rows):
    text = written_of(writer_table(WRITER_ROWS), threads=threads, chunk_rows=chunk_rows)
    assert text == csv_text(("n", "text"), WRITER_ROWS)


@pytest.mark.parametrize("threads", [1, 2])
def test_an_empty_table_is_written_as_the_header_alone(threads):
    assert written_of(writer_table([]), threads=threads, chunk_rows=3) == "n,text\n"


def test_the_writer_writes_the_cells_function_makes_of_each_chunk():
    def shouted(table):
        return pa.table({"N": table.column("n"), "TEXT": pc.utf8_upper(table.column("text"))})

    text = written_of(writer_table(WRITER_ROWS[:4]), shouted, threads=2, chunk_rows=3)
    assert text == csv_text(("N", "TEXT"), [("1", "PLAIN"), ("2", "A,B"), ("3", None), ("4", 'SAY "HI"')])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_chunk_whose_cells_keep_no_rows_adds_no_line(threads):
    def odd_only(table):
        return table.filter(pc.equal(pc.bit_wise_and(pc.cast(table.column("n"), pa.int64()), 1), 1))

    # chunks of 2 rows: [1, 2] [3, 4] ... keep 1 and 3 ...; with chunks of 1 row every even row's chunk is empty
    text = written_of(writer_table(WRITER_ROWS), odd_only, threads=threads, chunk_rows=1)
    assert text == csv_text(("n", "text"), [r for r in WRITER_ROWS if int(r[0]) % 2])


def cells_recording(seen, lock, delay=0.0):
    import threading
    import time

    def cells(table):
        if table.num_rows:
            with lock:
                seen["now"] += 1
                seen["most"] = max(seen["most"], seen["now"])
                seen["threads"].add(threading.get_ident())
            time.sleep(delay)
            with lock:
                seen["now"] -= 1
        return table

    return cells


def made_on(rows_count, threads, chunk_rows, delay=0.0):
    """The threads the chunks' cells were made on, and how many chunks were made at once at most."""
    import threading

    seen = {"now": 0, "most": 0, "threads": set()}
    rows_ = [(str(i), f"v{i}") for i in range(rows_count)]
    text = written_of(
        writer_table(rows_), cells_recording(seen, threading.Lock(), delay), threads=threads, chunk_rows=chunk_rows
    )
    assert text == csv_text(("n", "text"), rows_)
    return seen["threads"], seen["most"]


@pytest.mark.parametrize("threads", [0, 1])
def test_on_one_thread_every_chunk_is_made_on_the_callers_thread(threads):
    import threading

    assert made_on(9, threads, 3)[0] == {threading.get_ident()}


def test_by_default_the_chunks_are_made_on_the_callers_thread():
    import threading

    made = set()
    rows_ = [(str(i), "v") for i in range(4)]

    def cells(table):
        made.add(threading.get_ident())
        return table

    sink = io.BytesIO()
    output.write_csv_of(writer_table(rows_), cells, sink, chunk_rows=1)
    assert sink.getvalue().decode() == csv_text(("n", "text"), rows_)
    assert made == {threading.get_ident()}


def test_a_table_of_a_single_chunk_is_made_on_the_callers_thread_whatever_the_threads():
    import threading

    assert made_on(3, 4, 3)[0] == {threading.get_ident()}
    assert made_on(5, 4, None)[0] == {threading.get_ident()}


@pytest.mark.parametrize(("rows_count", "threads"), [(6, 2), (9, 2), (9, 3)])
def test_on_more_threads_the_chunks_are_made_off_the_callers_thread(rows_count, threads):
    import threading

    made = made_on(rows_count, threads, 3)[0]
    assert made
    assert threading.get_ident() not in made


def test_on_n_threads_at_most_n_chunks_are_made_at_once():
    assert made_on(8, 2, 1, delay=0.05)[1] <= 2


# --- the byte checks that let neutralise and the quoting skip their regexes


def test_the_byte_checks_read_large_string_columns_as_string_columns():
    # 64-bit offsets: read as 32-bit ones, "b,c" would fall outside the bytes looked at.
    assert output._holds_any_byte(pa.array(["a", "b,c"], pa.large_string()), ",") is True
    assert output._holds_any_byte(pa.array(["a", "b"], pa.large_string()), ",") is False
    assert output._first_bytes_among(pa.array(["a", "=c"], pa.large_string()), "=") is True
    assert output._first_bytes_among(pa.array(["a", "c="], pa.large_string()), "=") is False


def test_whether_a_column_holds_a_byte_is_decided_on_its_own_cells_only():
    parent = pa.array(["a,b", "ok", "fine", "x,y"])
    assert output._holds_any_byte(parent.slice(1, 2), ",") is False
    assert output._holds_any_byte(parent.slice(1, 3), ",") is True
    assert output._holds_any_byte(parent.slice(0, 1), ",") is True


def test_whether_a_column_has_a_cell_starting_with_a_byte_looks_at_first_bytes_only():
    assert output._first_bytes_among(pa.array(["a=b", "1+1", "x-"]), "=+-") is False
    assert output._first_bytes_among(pa.array(["", "a=b", "-x"]), "=+-") is True
    assert output._first_bytes_among(pa.array(["=x", "ok", "fine", "+y"]).slice(1, 2), "=+-") is False


def test_parquet_keeps_dictionaries_for_repeating_columns_only():
    _, table = processed_csv([row(id_=str(i), status=("Active", "Pending")[i % 2]) for i in range(4)])
    sink = io.BytesIO()
    output.write_parquet(output.parquet_table(table, PROCESSING_DATE), sink)
    meta = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    with_dictionary = {n for i, n in enumerate(names) if meta.row_group(0).column(i).has_dictionary_page}
    plain = {"id", "email", "amount", "running_total_by_status", "line_number"}
    boolean = {"email_valid"}  # Parquet has no dictionary encoding for booleans
    assert with_dictionary == set(names) - plain - boolean


def test_a_formula_cell_does_not_make_its_neighbours_formulas():
    # Only a cell's own first character counts: = + - @ tab CR; letters (X, t, r) never do, whatever the column holds.
    cells = ["=1+1", "Xavier", "t", "r", "\\", "x-1", "@a", "\tb", "\rc", "-", "+"]
    written = output.neutralise(pa.array(cells, pa.string())).to_pylist()
    assert written == ["'=1+1", "Xavier", "t", "r", "\\", "x-1", "'@a", "'\tb", "'\rc", "'-", "'+"]


def test_on_n_threads_at_most_n_plus_1_chunks_are_held_while_a_slow_sink_writes():
    import threading
    import time

    lock = threading.Lock()
    state = {"made": 0, "written": 0, "most_held": 0}

    def cells(table):
        if table.num_rows:
            with lock:
                state["made"] += 1
                state["most_held"] = max(state["most_held"], state["made"] - state["written"])
        return table

    class SlowSink(io.BytesIO):
        def write(self, data):
            time.sleep(0.02)
            if self.tell():  # past the header: a chunk's lines, written at once
                with lock:
                    state["written"] += 1
            return super().write(data)

    rows_ = [(str(i), "v") for i in range(10)]
    sink = SlowSink()
    output.write_csv_of(writer_table(rows_), cells, sink, threads=2, chunk_rows=1)
    assert sink.getvalue().decode() == csv_text(("n", "text"), rows_)
    assert state["made"] == 10
    assert state["most_held"] <= 3


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
def test_neutralising_and_quoting_give_the_same_bytes_for_large_string_columns(string_type):
    # Arrow hands over large_string when a column's text passes 2 GiB (or a reader chooses it): same cells, same bytes.
    cells = ["=1+1", 'say "hi"', "a,b", None, "-12.5", "plain"]
    table = pa.table({"c": output.neutralise(pa.array(cells, string_type))})
    assert output.csv_bytes(table).decode() == 'c\n\'=1+1\n"say ""hi"""\n"a,b"\n\n-12.5\nplain\n'


@pytest.mark.parametrize("chunk_rows", [1, 2, 100])
def test_the_source_file_cell_is_quoted_and_neutralised_like_any_cell_in_every_line(chunk_rows):
    # source_file and processing_date hold one value per upload; the writer makes each value's cell once. A key is
    # the uploader's: a comma, a quote, a formula trigger in it must come out quoted and neutralised on every line.
    raw = {c: pa.array([r[i] for r in [row(id_="1"), row(id_="2"), row(id_="3")]], pa.string())
           for i, c in enumerate(rules.REQUIRED_COLUMNS)}  # fmt: skip
    table = rules.process(raw, pa.array([2, 3, 4], pa.int64()), '=cmd,"x".csv', PROCESSING_DATE).table
    sink = io.BytesIO()
    output.write_csv(output.processed_text(table), sink, chunk_rows=chunk_rows)
    lines = sink.getvalue().decode("utf-8").splitlines()
    assert len(lines) == 4
    assert all(line.endswith(',2026-04-01 10:00:30.000,"\'=cmd,""x"".csv"') for line in lines[1:])


def test_one_value_columns_of_several_uploads_or_missing_values_give_each_rows_own_cell():
    table = pa.table(
        {
            "id": pa.array(["1", "2", "3", "4"]),
            "processing_date": pa.array([PROCESSING_DATE, PROCESSING_DATE, None, "2026-04-02T00:00:00.000Z"]),
            "source_file": pa.array(["input/a.csv", "+b", "input/a.csv", None]),
        }
    )
    made = {
        "processing_date": output._by_value(
            table.column("processing_date").combine_chunks(),
            lambda d: pa.array([output.timestamp_text(v) if v else None for v in d.to_pylist()]),
        ),
        "source_file": output._by_value(table.column("source_file").combine_chunks(), output.neutralise),
    }
    lines = output.csv_lines(pa.table({"id": table.column("id"), **made})).to_pylist()
    assert lines == [
        "1,2026-04-01 10:00:30.000,input/a.csv\n",
        "2,2026-04-01 10:00:30.000,'+b\n",
        "3,,input/a.csv\n",
        "4,2026-04-02 00:00:00.000,\n",
    ]
    # A slice where the column holds one value (the writer's chunks), and a table of that column alone.
    one = output.csv_lines(pa.table({"id": table.column("id").slice(0, 2), "p": made["processing_date"].slice(0, 2)}))
    assert one.to_pylist() == ["1,2026-04-01 10:00:30.000\n", "2,2026-04-01 10:00:30.000\n"]
    alone = output.csv_lines(pa.table({"p": made["processing_date"].slice(0, 2)}))
    assert alone.to_pylist() == ["2026-04-01 10:00:30.000\n"] * 2


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
def test_a_dictionary_encoded_column_is_written_as_its_values_cells(string_type):
    # csv_lines takes dictionary-encoded string columns: one value in every row is made into its cell once; a
    # missing value stays an empty cell; the line keeps the other columns' string type.
    one = pa.DictionaryArray.from_arrays(pa.array([0, 0, 0], pa.int32()), pa.array(["a,b"], string_type))
    gaps = pa.DictionaryArray.from_arrays(pa.array([0, None, 0], pa.int32()), pa.array(["x"], string_type))
    ids = pa.array(["1", "2", "3"], string_type)
    lines = output.csv_lines(pa.table({"id": ids, "one": one, "gaps": gaps}))
    assert lines.type == string_type
    assert lines.to_pylist() == ['1,"a,b",x\n', '2,"a,b",\n', '3,"a,b",x\n']
    assert output.csv_lines(pa.table({"one": one})).to_pylist() == ['"a,b"\n'] * 3
    assert output.csv_lines(pa.table({"gaps": gaps})).to_pylist() == ["x\n", "\n", "x\n"]


def test_parquet_amounts_and_totals_are_read_from_their_text_when_no_typed_values_come_with_them():
    # The split path's parts carry their totals as text (the rules' table carries typed values beside the text):
    # Parquet gets the same decimals either way.
    _, table = processed_csv(
        [row(id_="1", amount="-0.5"), row(id_="2", amount="$12,500,000.25"), row(id_="3", amount="")]
    )
    text_only = table.drop_columns([c for c in output.TYPED_VALUES.values() if c in table.column_names])
    assert text_only.num_columns == table.num_columns - 2
    typed, from_text = (output.parquet_table(t, PROCESSING_DATE) for t in (table, text_only))
    assert from_text.equals(typed)
    assert [str(v) if v is not None else None for v in from_text.column("amount").to_pylist()] == [
        "-0.500000000", "12500000.250000000", None]  # fmt: skip
    assert [str(v) for v in from_text.column("running_total_by_status").to_pylist()] == [
        "-0.500000000", "12499999.750000000", "12499999.750000000"]  # fmt: skip
