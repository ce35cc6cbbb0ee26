"""Ad-hoc access to the history: `python -m app.history {sql,usage,compact} ...`

    python -m app.history sql "SELECT model_id, count(*) FROM inferences GROUP BY ALL"
    python -m app.history usage --since 2026-11-01
    python -m app.history compact          # only while no server writes the same root

The storage root comes from --root, else from the server config's history.storage_root.
`sql` opens DuckDB with the views of views.sql plus the rows still in the write-ahead log,
so it sees everything the server has acknowledged, flushed or not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

from app.history.schemas import SCHEMAS
from app.history.wal import read_segments

VIEWS_SQL = Path(__file__).with_name("views.sql")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def storage_root(args: argparse.Namespace) -> Path:
    if args.root:
        return Path(args.root).resolve()
    from app.config import load_server_config, resolve_config_path

    root = load_server_config(resolve_config_path(args.config)).history.storage_root
    if "://" in root:
        raise SystemExit(f"{root}: the CLI reads local roots; query remote ones with pyarrow")
    return Path(root)


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with views inferences, billing and feedback over `root`."""
    if not (root / "inferences" / "_manifest.json").exists():
        raise SystemExit(f"{root}: no history here yet (start the server once)")
    con = duckdb.connect()
    con.execute(f"SET file_search_path = '{str(root).replace(chr(39), chr(39) * 2)}'")
    con.execute(VIEWS_SQL.read_text())
    for name, schema in SCHEMAS.items():
        pending = list(read_segments(root / "_wal" / name, schema))
        if not pending:
            continue
        con.register(f"{name}_wal", pa.Table.from_pylist(pending, schema=schema))
        con.execute(f"ALTER VIEW {name} RENAME TO {name}_published")
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM {name}_published UNION ALL BY NAME "
            f"SELECT * FROM {name}_wal WHERE id NOT IN (SELECT id FROM {name}_published)"
        )
    return con


USAGE_SQL = """
    SELECT project_id, coalesce(training_job_id, base_model, model_id) AS model_id,
           count(*) AS inferences,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           round(sum(cost_usd), 6) AS cost_usd
    FROM billing
    WHERE (CAST(? AS TIMESTAMPTZ) IS NULL OR created_at >= CAST(? AS TIMESTAMPTZ))
      AND (CAST(? AS TIMESTAMPTZ) IS NULL OR created_at <= CAST(? AS TIMESTAMPTZ))
      AND (CAST(? AS VARCHAR) IS NULL OR project_id = ?)
    GROUP BY ALL ORDER BY ALL
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.history", description=__doc__)
    parser.add_argument("--root", help="storage root (default: from the server config)")
    parser.add_argument("--config", default="configs/server.yaml", help="server config YAML")
    sub = parser.add_subparsers(dest="command", required=True)
    sql = sub.add_parser("sql", help="run SQL over the views; prints a table")
    sql.add_argument("query")
    usage = sub.add_parser("usage", help="tokens and cost per project and model")
    usage.add_argument("--since")
    usage.add_argument("--until")
    usage.add_argument("--project")
    compact = sub.add_parser("compact", help="merge small files (server stopped)")
    compact.add_argument("--min-files", type=int, default=2)
    args = parser.parse_args(argv)
    root = storage_root(args)

    if args.command == "compact":
        from app.history.store import HistoryStore, LockedError

        try:
            store = HistoryStore(str(root), None).open()
        except LockedError as exc:
            raise SystemExit(f"{exc}: the running server compacts on its own") from None
        try:
            print(store.compact(args.min_files), store.collect_garbage())
        finally:
            store.close()
        return 0

    con = connect(root)
    if args.command == "sql":
        con.sql(args.query).show(max_rows=200, max_width=200)
    else:
        params = [args.since, args.since, args.until, args.until, args.project, args.project]
        con.sql(USAGE_SQL, params=params).show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
