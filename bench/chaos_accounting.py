"""What `bench/chaos.py` saw: each request's outcome, each kill, and the accounting after
(DuckDB over the storage root: every acknowledged inference billed once, stored once unless
`store: false`), printed as the report."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

DECODER_KINDS = ("native_generate", "chat", "chat_stream", "completions", "responses")
DECODER_KINDS += ("messages", "messages_stream")
ENCODER_KINDS = ("native_extract", "chat_encoder")
HISTORY_KINDS = ("history", "history_get")
NODE_LOSS = "node:models"  # --cluster: the model node is SIGKILLed, then started again


@dataclass
class Result:
    kind: str
    start: float  # seconds since the run began
    end: float
    status: str  # HTTP status, "200-stream-error", "200-truncated", or an exception name
    ok: bool
    inference_id: str | None = None
    store: bool = True
    json_body: bool | None = None  # for a failure: was the error body JSON
    detail: str = ""

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class Kill:
    deployment: str
    at: float
    replicas: list[str]
    replaced_at: float | None = None


@dataclass
class Run:
    encoder: str
    llm: str
    decoder: str
    t0: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    results: list[Result] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    watchers: list[asyncio.Task[None]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def stored_ids(self) -> list[str]:
        return [r.inference_id for r in self.results if r.ok and r.store and r.inference_id]


def needs(deployment: str, decoder: str) -> tuple[str, ...]:
    """The request kinds that cannot succeed without this deployment."""
    inference = ENCODER_KINDS + DECODER_KINDS
    return {
        "EncoderDeployment": ENCODER_KINDS,
        decoder: DECODER_KINDS,
        "ModelResolver": inference,
        "Recorder": inference + HISTORY_KINDS,
        "Ingress": inference + HISTORY_KINDS,
        NODE_LOSS: ENCODER_KINDS + DECODER_KINDS,  # the model node holds every model replica
    }[deployment]


def recovery(run: Run, kill: Kill, kinds: tuple[str, ...]) -> Result | None:
    """The first success of a request sent after the kill; for a lost node, the later of the
    first extraction and the first generation (it held both kinds of model)."""
    groups = (ENCODER_KINDS, DECODER_KINDS) if kill.deployment == NODE_LOSS else (kinds,)
    firsts = []
    for group in groups:
        after = [r for r in run.results if r.ok and r.kind in group and r.start >= kill.at]
        firsts.append(min(after, key=lambda r: r.end, default=None))
    if None in firsts:
        return None
    return max(firsts, key=lambda r: r.end if r else 0.0)


def check_history(root: Path, run: Run) -> tuple[dict[str, int], Counter[str]]:
    import pyarrow as pa

    from app.history.__main__ import connect

    acked = {r.inference_id: r.store for r in run.results if r.ok and r.inference_id}
    con = connect(root)
    columns = pa.schema([("id", pa.string()), ("store", pa.bool_())])
    con.register("acked", pa.table([list(acked), list(acked.values())], schema=columns))
    failed_ids = {r.inference_id: r.status for r in run.results if not r.ok and r.inference_id}
    con.register(
        "unacked", pa.table({"id": list(failed_ids)}, schema=pa.schema([("id", pa.string())]))
    )
    counts: dict[str, dict[str, int]] = {}
    doubled: dict[str, int] = {}
    for name in ("inferences", "billing"):
        counts[name] = dict(
            con.execute(
                f"SELECT id, count(*) FROM {name} WHERE id IN (SELECT id FROM acked) GROUP BY id"
            ).fetchall()
        )
        doubled[name] = con.execute(
            f"SELECT count(*) FROM (SELECT id FROM {name} GROUP BY id HAVING count(*) > 1)"
        ).fetchall()[0][0]
    other, other_failed = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM billing "
        "WHERE id NOT IN (SELECT id FROM acked)"
    ).fetchall()[0]
    other_rows, other_ok = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE error_type IS NULL) FROM inferences "
        "WHERE id NOT IN (SELECT id FROM acked)"
    ).fetchall()[0]
    billed = con.execute(
        "SELECT id FROM billing WHERE status != 'failed' AND id IN (SELECT id FROM unacked)"
    ).fetchall()
    wal = sum(1 for p in (root / "_wal").glob("*/*.jsonl") for _ in p.open())
    stored = counts["inferences"]
    return {
        "acknowledged": len(acked),
        "acknowledged store:false": sum(1 for s in acked.values() if not s),
        "lost": sum(1 for i, s in acked.items() if s and stored.get(i, 0) == 0),
        "stored despite store:false": sum(1 for i, s in acked.items() if not s and i in stored),
        "doubled in inferences": doubled["inferences"],
        "doubled in billing": doubled["billing"],
        "missing bills": sum(1 for i in acked if counts["billing"].get(i, 0) == 0),
        "billing rows, not acknowledged": other,
        "  of which status=failed": other_failed,
        "history rows, not acknowledged": other_rows,
        "  of which without an error": other_ok,
        "WAL lines left after flush": wal,
    }, Counter(failed_ids[i] for (i,) in billed)


def report(
    run: Run, args: argparse.Namespace, decoder: str, checks: dict[str, int], billed: Counter[str]
) -> int:
    by_kind: dict[str, list[Result]] = defaultdict(list)
    for r in run.results:
        by_kind[r.kind].append(r)
    span = max((r.end for r in run.results), default=0.0)
    print(f"\n== requests ({len(run.results)} in {span:.0f} s, {args.clients} clients)")
    over = f">{args.limit_s:g}s"
    print(f"{'kind':<17}{'total':>6}{'acked':>7}{'max_s':>8}{over:>6}  statuses")
    for kind, rs in sorted(by_kind.items()):
        statuses = ", ".join(f"{s}: {c}" for s, c in sorted(Counter(r.status for r in rs).items()))
        acked, slow = sum(r.ok for r in rs), sum(r.latency > args.limit_s for r in rs)
        top = max(r.latency for r in rs)
        print(f"{kind:<17}{len(rs):>6}{acked:>7}{top:>8.1f}{slow:>6}  {statuses}")
    failures = [r for r in run.results if not r.ok]
    non_json = sum(r.json_body is False for r in failures)
    print(f"\nnot acknowledged: {len(failures)}; non-JSON error bodies: {non_json}")
    for (status, is_json, detail), count in Counter(
        (r.status, r.json_body, r.detail) for r in failures
    ).most_common(20):
        shape = {True: "json", False: "NOT JSON", None: "-"}[is_json]
        print(f"  {count:>5} x {status} [{shape}] {detail}")
    step = max(5.0, args.duration / 12)
    print("\n== timeline (by end time; ok / failed, slowest request ending in the slice)")
    for lo in [i * step for i in range(int(span // step) + 1)]:
        rs = [r for r in run.results if lo <= r.end < lo + step]
        kills = [k.deployment for k in run.kills if lo <= k.at < lo + step]
        top = max((r.latency for r in rs), default=0.0)
        fail = dict(Counter(r.status for r in rs if not r.ok)) or ""
        marks = f"  <- killed {', '.join(kills)}" if kills else ""
        ok = sum(r.ok for r in rs)
        print(f"  {lo:5.0f}s {ok:>5} / {len(rs) - ok:<5}{top:6.1f}s  {fail}{marks}")
    print("\n== kills (recovery: first success of a request sent after the kill, same kinds)")
    for kill in run.kills:
        kinds = needs(kill.deployment, decoder)
        first = recovery(run, kill, kinds)
        held = [r for r in run.results if r.start < kill.at < r.end]
        until = first.end if first else span + 1
        during = [r for r in run.results if r.kind in kinds and not r.ok and kill.at <= r.end]
        during = [r for r in during if r.start < until]
        replaced = f"+{kill.replaced_at - kill.at:.1f}s" if kill.replaced_at else "not seen"
        recovered = f"+{first.end - kill.at:.1f}s ({first.kind})" if first else "NOT RECOVERED"
        longest = max((r.latency for r in held), default=0.0)
        print(
            f"  t={kill.at:5.1f}s {kill.deployment} ({len(kill.replicas)} replica killed): "
            f"replacement healthy {replaced}, recovery {recovered}; in flight at the kill: "
            f"{len(held)} (ok {sum(r.ok for r in held)}, longest {longest:.1f}s)"
        )
        for (status, detail), count in Counter((r.status, r.detail) for r in during).most_common(4):
            print(f"      {count:>4} x {status} {detail}")
    print(f"\n== history check (DuckDB over {args.storage_root})")
    for name, value in checks.items():
        print(f"  {name:<32}{value:>8}")
    print(f"  answered with a failure, billed as a success: {dict(billed) or 0}")
    bad = sum(checks[k] for k in list(checks)[2:7])  # lost .. missing bills
    print("\nRESULT:", "FAIL" if bad else "PASS")
    return 1 if bad else 0
