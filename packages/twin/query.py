"""The twin's stand-in for Athena: SQL over the Data Catalog's tables with DuckDB, offline.

`ingest query` downloads each catalog table's files from the emulator's S3 and runs this script with a JSON request
on stdin:

    {"sql": "...", "maxRows": 1000,
     "tables": [{"name": "processed_rows", "format": "parquet", "columns": [{"name": "id", "type": "string"}, ...],
                 "partitionKeys": [{"name": "ingest_date", "type": "string"}], "files": ["/tmp/.../0.parquet"]}]}

`columns` and `partitionKeys` are the catalog's (GetTables), in Hive types; each table becomes one DuckDB view with
exactly those columns, cast to those types, so a query sees what Athena would. Partition values come from the
files' paths (`ingest_date=<day>/`). The answer is one JSON object on stdout: {"columns": [{"name", "type"}],
"rows": [[...]], "truncated": bool}, or {"error": "..."} with exit code 2 when the SQL or a file is refused.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import sys
from typing import Any

import duckdb

_SIMPLE = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}
_SAFE_INTEGER = 2**53


class CatalogTypeError(ValueError):
    pass


def duckdb_type(hive: str) -> str:
    """A Hive DDL type (as Glue stores it) as DuckDB's: decimal(24,9) -> DECIMAL(24,9), map<string,bigint> ->
    MAP(VARCHAR, BIGINT), array<int> -> INTEGER[], struct<a:int> -> STRUCT("a" INTEGER)."""
    text = hive.strip()
    parsed, rest = _parse(text.lower(), text)
    if rest.strip():
        raise CatalogTypeError(f"unsupported type {hive!r}")
    return parsed


def _parse(s: str, original: str) -> tuple[str, str]:
    s = s.lstrip()
    m = re.match(r"(decimal)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", s)
    if m:
        return f"DECIMAL({m.group(2)},{m.group(3)})", s[m.end() :]
    m = re.match(r"(varchar|char)\s*\(\s*\d+\s*\)", s)
    if m:
        return "VARCHAR", s[m.end() :]
    for prefix in ("array<", "map<", "struct<"):
        if s.startswith(prefix):
            return _parse_nested(prefix[:-1], s[len(prefix) :], original)
    m = re.match(r"[a-z]+", s)
    if m and m.group(0) in _SIMPLE:
        return _SIMPLE[m.group(0)], s[m.end() :]
    raise CatalogTypeError(f"unsupported type {original!r}")


def _expect(s: str, ch: str, original: str) -> str:
    s = s.lstrip()
    if not s.startswith(ch):
        raise CatalogTypeError(f"unsupported type {original!r}")
    return s[1:]


def _parse_nested(kind: str, s: str, original: str) -> tuple[str, str]:
    if kind == "array":
        inner, s = _parse(s, original)
        return f"{inner}[]", _expect(s, ">", original)
    if kind == "map":
        key, s = _parse(s, original)
        value, s = _parse(_expect(s, ",", original), original)
        return f"MAP({key}, {value})", _expect(s, ">", original)
    fields = []
    while True:
        m = re.match(r"\s*([a-z0-9_]+)\s*:", s)
        if not m:
            raise CatalogTypeError(f"unsupported type {original!r}")
        t, s = _parse(s[m.end() :], original)
        fields.append(f"{_ident(m.group(1))} {t}")
        s = s.lstrip()
        if s.startswith(","):
            s = s[1:]
            continue
        return f"STRUCT({', '.join(fields)})", _expect(s, ">", original)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files(files: list[str]) -> str:
    return "[" + ", ".join(_literal(f) for f in files) + "]"


def view_sql(table: dict[str, Any]) -> str:
    """CREATE VIEW <name> AS SELECT <the catalog's columns, cast to its types> FROM <the table's files>."""
    name = table["name"]
    columns = table["columns"]
    partitions = table.get("partitionKeys") or []
    try:
        typed = [(c["name"], duckdb_type(c["type"])) for c in [*columns, *partitions]]
    except CatalogTypeError as e:
        raise CatalogTypeError(f"table {name}: {e}") from None
    select = ", ".join(f"CAST({_ident(c)} AS {t}) AS {_ident(c)}" for c, t in typed)
    files = table.get("files") or []
    if not files:
        empty = ", ".join(f"CAST(NULL AS {t}) AS {_ident(c)}" for c, t in typed)
        return f"CREATE VIEW {_ident(name)} AS SELECT {empty} LIMIT 0"
    hive = ""
    if partitions:
        types = ", ".join(f"{_literal(p['name'])}: 'VARCHAR'" for p in partitions)
        hive = f", hive_partitioning = true, hive_types = {{{types}}}"
    fmt = table["format"]
    if fmt == "parquet":
        source = f"read_parquet({_files(files)}, union_by_name = true{hive})"
    elif fmt == "csv":
        # Columns by position (as Athena's CSV tables), read as text; the header row is skipped.
        spec = ", ".join(f"{_literal(c['name'])}: 'VARCHAR'" for c in columns)
        source = (
            f"read_csv({_files(files)}, header = true, delim = ',', quote = '\"', escape = '\"', "
            f"auto_detect = false, columns = {{{spec}}}{hive})"
        )
    elif fmt == "json":
        spec = ", ".join(
            f"{_literal(c)}: {_literal(t)}" for c, t in typed[: len(columns)]
        )
        source = f"read_json({_files(files)}, format = 'newline_delimited', columns = {{{spec}}}{hive})"
    else:
        raise CatalogTypeError(f"table {name}: unsupported format {fmt!r}")
    return f"CREATE VIEW {_ident(name)} AS SELECT {select} FROM {source}"


def _value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if -_SAFE_INTEGER <= v <= _SAFE_INTEGER else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime):
        return v.isoformat(
            sep=" ",
            timespec="milliseconds" if v.microsecond % 1000 == 0 else "microseconds",
        )
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_value(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


def run(request: dict[str, Any]) -> dict[str, Any]:
    # Offline: never fetch an extension at run time (parquet and json are built into the package).
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        for table in request["tables"]:
            con.execute(view_sql(table))
        cursor = con.execute(request["sql"])
        if cursor.description is None:
            return {"columns": [], "rows": [], "truncated": False}
        columns = [{"name": d[0], "type": str(d[1])} for d in cursor.description]
        limit = int(request.get("maxRows", 1000))
        rows = cursor.fetchmany(limit + 1)
        return {
            "columns": columns,
            "rows": [[_value(v) for v in row] for row in rows[:limit]],
            "truncated": len(rows) > limit,
        }
    finally:
        con.close()


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        answer = run(request)
    except (duckdb.Error, CatalogTypeError) as e:
        sys.stdout.write(json.dumps({"error": str(e)}) + "\n")
        return 2
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
