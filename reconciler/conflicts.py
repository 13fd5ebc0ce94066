"""Conflicts: what a push does with a change whose base no longer holds, the records, and their resolution.

The cloud's version stays in place unless the table's policy says otherwise; the record (both rows, the
base, a deepdiff of local against cloud) is written on the cloud in the push transaction and reaches
every database through the journal, so the panel of any PC shows it, even offline. Row values stay
jsonb text from database to database (never rounded through Python floats).
"""

from __future__ import annotations

import json

import psycopg
from deepdiff import DeepDiff

from .engine import apply as _apply
from . import db as _db, labels
from .engine.apply import Leftover, parse
from .engine.tablesql import Table
from .errors import CcsyncError
from .kinds import KINDS, Kind, Policy  # noqa: F401  (KINDS: part of this module's API)



class AlreadyResolved(CcsyncError):
    """The conflict was resolved before."""


class UnknownConflict(CcsyncError):
    """No conflict has that id."""


def diff(local: str | None, cloud: str | None) -> str:
    """The deepdiff of the local row against the cloud row, as JSON text."""
    return DeepDiff(parse(local) or {}, parse(cloud) or {}, verbose_level=2).to_json()


def _winner(policy: str, local_hlc: int, cloud_hlc: int | None, node: str) -> str:
    if policy == Policy.NODE_WINS:
        return "local"
    if policy == Policy.LATEST_WINS:
        return "local" if (local_hlc, node) > (cloud_hlc or 0, "cloud") else "cloud"
    return "cloud"  # manual and cloud-wins: the cloud's version stays


class Found:
    """The conflicts of one pushed chunk, written once every change of the chunk is applied."""

    def __init__(self, node_name: str):
        self.node_name = node_name
        self.rows: dict[tuple[str, str], dict] = {}

    def add(self, t: Table, left: Leftover, kind: str, columns: list[str], local_row, cloud_hlc, resolution) -> None:
        key = (t.name, _apply.key_of(left.pk))
        seen = self.rows.get(key)
        if seen is None:
            self.rows[key] = {"table": t, "left": left, "kind": kind, "columns": list(columns),
                              "local_row": local_row, "cloud_hlc": cloud_hlc, "resolution": resolution}
        else:  # several local changes of one row: one record, with the latest local version
            seen.update(kind=kind, local_row=local_row, cloud_hlc=cloud_hlc, resolution=resolution,
                        columns=sorted(set(seen["columns"]) | set(columns)))

    def write(self, cloud: psycopg.Connection) -> int:
        """Record each conflict with the cloud's final version, and journal that version for every node."""
        for info in self.rows.values():
            t, left = info["table"], info["left"]
            cloud_row = _apply.fetch_images(cloud, t, [left.pk]).get(_apply.key_of(left.pk))
            _record(cloud, self.node_name, t, left, info["kind"], info["columns"], info["local_row"], cloud_row,
                    info["cloud_hlc"], info["resolution"])
            _journal_refresh(cloud, t, left.pk)
        return len(self.rows)


def handle_push_leftover(cloud: psycopg.Connection, node: psycopg.Connection, t: Table, left: Leftover,
                         found: Found) -> None:
    """Decide a change the set-wise push could not apply: merge what can be, apply the policy, note it."""
    present = left.cloud_row is not None
    if left.op == "D":
        if not present:
            return  # deleted on both sides
        kind = Kind.DELETE_UPDATE
    elif left.op == "I":
        if not left.columns:
            return  # the same row is already there
        kind = Kind.INSERT_INSERT
    else:
        kind = Kind.UPDATE_UPDATE if present else Kind.UPDATE_DELETE

    local_row = None
    if left.op != "D":
        local_row = _apply.fetch_images(node, t, [left.pk]).get(_apply.key_of(left.pk))
        if local_row is None and left.op == "I":
            local_row = left.new
    cloud_hlc = cloud.execute(
        "select max(hlc) from ccsync.journal where table_name = %s and pk = %s::jsonb", (t.name, left.pk)
    ).fetchone()[0]
    winner = _winner(t.policy, left.hlc, cloud_hlc, found.node_name)

    new_cols = list(parse(left.new) or {})
    if kind == Kind.UPDATE_UPDATE:
        merged = [c for c in new_cols if c not in left.columns]
        if winner == "local":
            _apply.apply_columns(cloud, t, left.seq, None)
        elif merged:
            _apply.apply_columns(cloud, t, left.seq, merged)
    elif winner == "local":
        if kind == Kind.UPDATE_DELETE and local_row is not None:
            _apply.upsert_images(cloud, t, [local_row])
        elif kind == Kind.DELETE_UPDATE:
            _apply.delete_keys(cloud, t, [left.pk])
        elif kind == Kind.INSERT_INSERT:
            _apply.upsert_images(cloud, t, [left.new])

    columns = left.columns if kind != Kind.UPDATE_DELETE else sorted(new_cols)
    resolution = None if t.policy == Policy.MANUAL else f"policy {t.policy}: kept {winner}"
    found.add(t, left, kind, columns, local_row, cloud_hlc, resolution)


def _record(cloud, node_name, t, left, kind, columns, local_row, cloud_row, cloud_hlc, resolution) -> None:
    # the cloud records it for the node of the connected role, and journals it for every node
    cloud.execute(
        "select ccsync.record_conflict(%(table)s, %(pk)s::jsonb, %(kind)s, %(columns)s, %(local)s::jsonb, "
        "%(cloud)s::jsonb, %(base)s::jsonb, %(diff)s::jsonb, %(lhlc)s, %(chlc)s, %(resolution)s)",
        {
            "table": t.name, "pk": left.pk, "kind": kind, "columns": list(columns),
            "local": local_row, "cloud": cloud_row, "base": left.old,
            "diff": diff(local_row, cloud_row), "lhlc": left.hlc, "chlc": cloud_hlc, "resolution": resolution,
        },
    )


def _journal_refresh(cloud, t: Table, pk: str) -> None:
    """Journal the row as the cloud now has it, for the conflicting node only (target): it takes the whole
    row, including a row it had deleted. The other nodes get every change the push made from the trigger."""
    cloud.execute("select ccsync.journal_for_node(%s, %s::jsonb)", (t.name, pk))


TABLE = "ccsync.conflicts"


def decide_step(cloud: psycopg.Connection, step: int) -> int:
    """A pushed step of decisions (a person resolved conflicts on the node, which updated its records): each goes
    to ccsync.decide, which applies it if the conflict is still open and the node's own; the staged changes are
    then done."""
    cloud.execute(
        "select ccsync.decide((s.pk ->> 'id')::bigint, s.new) from ccsync_stage s where s.step = %s order by s.seq",
        (step,),
    )
    return cloud.execute("update ccsync_stage set done = true where step = %s", (step,)).rowcount


# -- reading and resolving (on the node's database, so it works offline) ------------------------------
_FIELDS = ["id", "node", "table_name", "pk", "kind", "columns", "local_row", "cloud_row", "base", "diff",
           "local_hlc", "cloud_hlc", "detected_at", "status", "resolution", "resolved_by", "resolved_at",
           "resolved_row"]
_SELECT = "select " + ", ".join(_FIELDS) + " from ccsync.conflicts"


def _as_dict(row) -> dict:
    doc = dict(zip(_FIELDS, row))
    for k in ("pk", "local_row", "cloud_row", "base", "diff", "resolved_row"):
        doc[k] = parse(doc[k])
    for k in ("detected_at", "resolved_at"):
        if doc[k] is not None:
            doc[k] = doc[k].isoformat()
    return doc


def _local(local_dsn: str) -> psycopg.Connection:
    return _db.open_local(local_dsn, autocommit=False)


def list_conflicts(local_dsn: str, *, include_resolved: bool = False) -> list[dict]:
    """Open conflicts (all of them with include_resolved), oldest first."""
    with _local(local_dsn) as conn:
        where = "" if include_resolved else " where status = 'open'"
        return labels.label_conflicts(conn, [_as_dict(r) for r in conn.execute(_SELECT + where + " order by id")])


def get_conflict(local_dsn: str, conflict_id: int) -> dict:
    with _local(local_dsn) as conn:
        row = conn.execute(_SELECT + " where id = %s", (conflict_id,)).fetchone()
        if row is None:
            raise UnknownConflict(f"no conflict {conflict_id}: `ccsync conflicts list --all` shows them")
        return labels.label_conflicts(conn, [_as_dict(row)])[0]


def resolve(local_dsn: str, conflict_id: int, keep: str, *, by: str, merged: str | dict | None = None) -> dict:
    """Resolve a conflict on the node: the chosen values become a new local change that the push carries.

    keep='cloud' closes it (the cloud's version is in place); keep='local' writes the local values of the
    conflicting columns (columns merged without conflict keep their merged values); keep='merged' writes
    the given values. The change is journaled with the cloud's values as its base, so that it applies on
    the cloud without a new conflict, and reaches every node from there.
    """
    if keep not in ("local", "cloud", "merged"):
        raise CcsyncError(f"unknown choice {keep!r}: keep local, cloud or merged")
    if not by or not by.strip():
        raise CcsyncError("say who resolves the conflict (--by NAME)")
    merged_text = _merged_text(merged) if keep == "merged" else None
    with _db.canonical(_local(local_dsn)) as conn:
        with conn.transaction():
            row = conn.execute(_SELECT + " where id = %s for update", (conflict_id,)).fetchone()
            if row is None:
                raise UnknownConflict(f"no conflict {conflict_id}: `ccsync conflicts list` shows the open ones")
            c = dict(zip(_FIELDS, row))
            if c["status"] != "open":
                raise AlreadyResolved(
                    f"conflict {conflict_id} was already resolved ({c['resolution']}) by {c['resolved_by']} "
                    f"at {c['resolved_at']:%Y-%m-%d %H:%M:%S %Z}"
                )
            t = Table.load(conn, c["table_name"])
            if t is None:
                raise CcsyncError(f"table {c['table_name']} no longer exists on this database")
            if merged_text is not None:
                unknown = sorted(set(parse(merged_text)) - {col.name for col in t.columns})
                if unknown:
                    raise CcsyncError(f"the merged row names unknown column(s) of {t.name}: {', '.join(unknown)}")
                if any(k in parse(merged_text) and parse(merged_text)[k] != parse(c["pk"]).get(k) for k in t.pk):
                    raise CcsyncError("a merged row cannot change the primary key")
            chosen = _write_resolution(conn, t, c, keep, merged_text)
            conn.execute(
                "update ccsync.conflicts set status = 'resolved', resolution = %s, resolved_by = %s, "
                "resolved_at = now(), resolved_row = %s::jsonb where id = %s",
                (f"kept {keep}", by.strip(), chosen, conflict_id),
            )
    return get_conflict(local_dsn, conflict_id)


def _target(conn, c: dict, keep: str, merged_text: str | None) -> str | None:
    """The row a decision writes (jsonb text; None: the record is deleted). The one place that says it, for the
    resolution itself and for its preview."""
    cloud_row, local_row = c["cloud_row"], c["local_row"]
    if keep == "cloud":
        return cloud_row
    if keep == "merged":
        return conn.execute(
            "select coalesce(%s::jsonb, %s::jsonb, '{}') || %s::jsonb || %s::jsonb",
            (cloud_row, local_row, merged_text, c["pk"]),
        ).fetchone()[0]
    if c["kind"] in (Kind.UPDATE_UPDATE, Kind.INSERT_INSERT):
        return conn.execute(
            "select coalesce(%s::jsonb, '{}') || coalesce((select jsonb_object_agg(e.key, e.value) "
            "from jsonb_each(coalesce(%s::jsonb, '{}')) e where e.key = any(%s)), '{}')",
            (cloud_row, local_row, list(c["columns"])),
        ).fetchone()[0]
    if c["kind"] == Kind.UPDATE_DELETE:
        return local_row
    return None  # delete_update: the local version is the deletion


def preview(local_dsn: str, conflict_id: int, keep: str, *, merged: str | dict | None = None) -> dict:
    """What a decision would write, without writing it: {action (update, insert, delete or none), row (the
    record as it would be everywhere; null when deleted), changes: [{column, now, then}]}: `now` is the value
    in place everywhere (the cloud's), `then` the value after the decision."""
    if keep not in ("local", "cloud", "merged"):
        raise CcsyncError(f"unknown choice {keep!r}: keep local, cloud or merged")
    merged_text = _merged_text(merged) if keep == "merged" else None
    with _db.canonical(_local(local_dsn)) as conn:
        row = conn.execute(_SELECT + " where id = %s", (conflict_id,)).fetchone()
        if row is None:
            raise UnknownConflict(f"no conflict {conflict_id}: `ccsync conflicts list` shows the open ones")
        c = dict(zip(_FIELDS, row))
        target = _target(conn, c, keep, merged_text)
    now, then = parse(c["cloud_row"]), parse(target)
    if now is None and then is None:
        action = "none"
    elif then is None:
        action = "delete"
    elif now is None:
        action = "insert"
    else:
        action = "update" if now != then else "none"
    names = list(dict.fromkeys([*(now or {}), *(then or {})]))
    changes = [{"column": n, "now": (now or {}).get(n), "then": (then or {}).get(n)} for n in names
               if now is None or then is None or now.get(n) != then.get(n)]
    return {"action": action, "row": then, "changes": changes}


def _merged_text(merged: str | dict | None) -> str:
    text = merged if isinstance(merged, str) else json.dumps(merged)
    try:
        doc = parse(text)
    except (TypeError, ValueError):
        raise CcsyncError("the merged row is not valid JSON: give an object of column: value") from None
    if not isinstance(doc, dict):
        raise CcsyncError("the merged row must be a JSON object of column: value")
    return text


def _write_resolution(conn, t: Table, c: dict, keep: str, merged_text: str | None) -> str | None:
    """Write the chosen version locally (the trigger stays quiet) and journal it by hand against the cloud's."""
    cloud_row = c["cloud_row"]
    target = _target(conn, c, keep, merged_text)
    if keep == "cloud":
        return target

    _apply.applying(conn, True)  # written here without the trigger, journaled below against the cloud's version
    self_name = conn.execute("select name from ccsync.identity").fetchone()[0]
    if target is None:
        _apply.delete_keys(conn, t, [c["pk"]])
        _journal(conn, self_name, t, "D", c["pk"], cloud_row, None)
    elif cloud_row is None:
        _apply.upsert_images(conn, t, [target])
        _journal(conn, self_name, t, "I", c["pk"], None, target)
    else:
        old, new = conn.execute(
            "select jsonb_object_agg(e.key, %(c)s::jsonb -> e.key), jsonb_object_agg(e.key, e.value) "
            "from jsonb_each(%(t)s::jsonb) e where e.value is distinct from %(c)s::jsonb -> e.key",
            {"c": cloud_row, "t": target},
        ).fetchone()
        if new is not None:
            # only the chosen columns change here; the rest of the row is what this node already has
            current = _apply.fetch_images(conn, t, [c["pk"]]).get(_apply.key_of(c["pk"])) or cloud_row
            row = conn.execute("select %s::jsonb || %s::jsonb", (current, new)).fetchone()[0]
            _apply.upsert_images(conn, t, [row])
            _journal(conn, self_name, t, "U", c["pk"], old, new)
    _apply.applying(conn, False)
    return target


def _journal(conn, self_name: str, t: Table, op: str, pk: str, old: str | None, new: str | None) -> None:
    conn.execute(
        "insert into ccsync.journal (hlc, origin, table_name, op, pk, old, new) "
        "values (ccsync.hlc_next(), %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb)",
        (self_name, t.name, op, pk, old, new),
    )
