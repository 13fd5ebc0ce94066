"""Conflict records on the node (list, show) and a person's decisions on them (resolve): the only validator.

Records are written on the cloud by a push (reconciler/engine/detect.py: conflicts; refusals.py: refused
transactions) and reach every database through the journal, so the panel of any PC shows them, even
offline. A decision is the node's update of its record, journaled with the values it chose; the cloud
settles it (ccsync.decide). Row values stay jsonb text from database to database (never rounded through
Python floats).
"""

from __future__ import annotations

import json

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .engine import apply as _apply
from . import db as _db, labels, refusal_reasons
from .engine.apply import parse
from .engine.detect import diff  # noqa: F401  (the diff a record keeps: part of this module's API)
from .engine.tablesql import Table
from .errors import CcsyncError
from .kinds import KINDS, Kind  # noqa: F401  (KINDS: part of this module's API)



class AlreadyResolved(CcsyncError):
    """The conflict was resolved before."""


class UnknownConflict(CcsyncError):
    """No conflict has that id."""


# -- reading and resolving (on the node's database, so it works offline) ------------------------------
_FIELDS = ["id", "node", "table_name", "pk", "kind", "columns", "local_row", "cloud_row", "base", "diff",
           "local_hlc", "cloud_hlc", "detected_at", "status", "resolution", "resolved_by", "resolved_at",
           "resolved_row", "reason", "changes", "decision", "decided_on"]
_SELECT = sql.SQL("select {} from ccsync.conflicts ").format(sql.SQL(", ").join(map(sql.Identifier, _FIELDS)))


def _records(conn: psycopg.Connection, where: str, params: tuple = ()) -> list[dict]:
    """The records `where` selects, each a dict of _FIELDS (values as stored: jsonb as text)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SELECT + sql.SQL(where), params).fetchall()


def _as_dict(doc: dict) -> dict:
    doc = dict(doc)
    for k in ("pk", "local_row", "cloud_row", "base", "diff", "resolved_row", "changes"):
        doc[k] = parse(doc[k])
    if doc["decision"] is not None:
        doc["decision"] = str(doc["decision"])
    doc["reason_code"] = refusal_reasons.parse(doc["reason"])  # the panel words it in its reader's language
    doc["reason"] = refusal_reasons.english(doc["reason"])
    for k in ("detected_at", "resolved_at"):
        if doc[k] is not None:
            doc[k] = doc[k].isoformat()
    return doc


def list_conflicts(conn: psycopg.Connection, *, include_resolved: bool = False) -> list[dict]:
    """Open conflicts (all of them with include_resolved), oldest first. `conn`: the node's database, as
    `db.open_local` opens it (every function here takes one)."""
    with conn.transaction():
        where = "" if include_resolved else "where status = 'open' "
        return labels.label_conflicts(conn, [_as_dict(r) for r in _records(conn, where + "order by id")])


def get_conflict(conn: psycopg.Connection, conflict_id: int) -> dict:
    """One record, with its `label` and its `decisions` as the cloud accepted them, first to last:
    [{resolution, by, at, on, row, revisit}] (`revisit`: it decided the record again)."""
    with conn.transaction():
        found = _records(conn, "where id = %s", (conflict_id,))
        if not found:
            raise UnknownConflict(f"no conflict {conflict_id}: `ccsync conflicts list --all` shows them")
        doc = labels.label_conflicts(conn, [_as_dict(found[0])])[0]
        doc["decisions"] = [
            {"resolution": resolution, "by": by, "at": at.isoformat(), "on": on, "row": parse(row), "revisit": revisit}
            for resolution, by, at, on, row, revisit in conn.execute(
                "select resolution, resolved_by, resolved_at, decided_on, resolved_row::text, revisit_of is not null "
                "from ccsync.decisions where conflict_id = %s order by resolved_at, accepted_at", (conflict_id,))
        ]
        return doc


CONFLICT_CHOICES = ("local", "cloud", "merged")
REFUSAL_CHOICES = ("discard", "apply-again")


def resolve(conn: psycopg.Connection, conflict_id: int, keep: str, *, by: str, merged: str | dict | None = None,
            revisit: bool = False) -> dict:
    """Decide a record on the node: the decision, and the values it chose, become new local changes that
    the push carries to the cloud, which settles them.

    A conflict: keep='cloud' keeps the cloud's version; keep='local' writes the local values of the
    conflicting columns (columns merged without conflict keep their merged values); keep='merged' writes
    the given values. The values are journaled with the cloud's as their base, in the same transaction as
    the decision. A refusal: keep='discard' drops the refused transaction; keep='apply-again' writes its
    changes again as a new local transaction (its constraints are checked again at the push).

    Each record takes one decision: the first to reach the cloud. Another decision made meanwhile on another
    PC is refused there with the data it wrote, and comes back as a refused record of its own. A decided
    record can be revisited (revisit=True): a new decision, recorded with who and when like the first.
    """
    if keep not in CONFLICT_CHOICES + REFUSAL_CHOICES:
        raise CcsyncError(f"unknown choice {keep!r}: keep local, cloud or merged (a refusal: discard or apply-again)")
    if not by or not by.strip():
        raise CcsyncError("say who resolves the conflict (--by NAME)")
    merged_text = _merged_text(merged) if keep == "merged" else None
    try:
        _resolve(conn, conflict_id, keep, by, merged_text, revisit)
    except psycopg.errors.IntegrityError as exc:  # this PC's constraints (checked at the latest at its commit)
        raise _refused_here(conn, conflict_id, keep, exc) from None
    return get_conflict(conn, conflict_id)


def _resolve(conn, conflict_id: int, keep: str, by: str, merged_text: str | None, revisit: bool) -> None:
    with conn.transaction():  # one transaction: the decision and what it writes, or nothing
        _db.canonical(conn, local=True)
        if keep == "apply-again":  # its own transaction first: if the cloud refuses it again, that is a new record
            with conn.transaction():
                c = _locked(conn, conflict_id)
                _check_decidable(c, keep, revisit)
                _apply_again(conn, c)
        with conn.transaction():
            c = _locked(conn, conflict_id)
            _check_decidable(c, keep, revisit)
            chosen = None
            if c["kind"] != Kind.REFUSED:
                t = Table.load(conn, c["table_name"])
                if t is None:
                    raise CcsyncError(f"table {c['table_name']} no longer exists on this database")
                if merged_text is not None:
                    unknown = sorted(set(parse(merged_text)) - {col.name for col in t.columns})
                    if unknown:
                        raise CcsyncError(f"the merged row names unknown column(s) of {t.name}: {', '.join(unknown)}")
                    if any(k in parse(merged_text) and parse(merged_text)[k] != parse(c["pk"]).get(k) for k in t.pk):
                        raise CcsyncError("a merged row cannot change the primary key")
                chosen = _write_resolution(conn, t, c, keep, merged_text, revisit)
            _decide(conn, c, keep, by.strip(), chosen, revisit)


_FK_PARENT = """
select format('%%I.%%I', pn.nspname, pc.relname) as parent, format('%%I.%%I', cn.nspname, cc.relname) as child
  from pg_constraint k
  join pg_class cc on cc.oid = k.conrelid join pg_namespace cn on cn.oid = cc.relnamespace
  join pg_class pc on pc.oid = k.confrelid join pg_namespace pn on pn.oid = pc.relnamespace
 where k.contype = 'f' and k.conname = %s and cn.nspname = %s and cc.relname = %s
"""


def _refused_here(conn, conflict_id: int, keep: str, exc: psycopg.errors.IntegrityError) -> CcsyncError:
    """One line for a decision this PC's own constraints refuse (the transaction rolled back: nothing written):
    which table stands in the way and what to do; names only, never a value."""
    diag = exc.diag
    found = _records(conn, "where id = %s", (conflict_id,))
    table = found[0]["table_name"] if found else "the table"
    if keep in REFUSAL_CHOICES:  # a deferred constraint, at the commit of the changes written again
        constraint = diag.constraint_name or "a constraint"
        return CcsyncError(f"record {conflict_id} cannot be applied again on this PC ({constraint} on "
                           f"{diag.table_name or table}): fix the data first, or discard it")
    what = f"record {conflict_id}: this PC's constraints refuse that decision (nothing was written)"
    if diag.sqlstate == "23503":
        row = conn.execute(_FK_PARENT, (diag.constraint_name, diag.schema_name or "public", diag.table_name)).fetchone()
        parent, child = row if row else ("another table", "another table")
        if keep != "merged" and found and _target(conn, found[0], keep, None) is None:  # the decision deletes
            return CcsyncError(f"{what}: rows of {child} on this PC still refer to this row of {table}: "
                               "keep the cloud's version, or change those rows first")
        return CcsyncError(f"{what}: the row of {parent} that this version of {table} refers to is no longer "
                           f"there (deleted on the cloud or on this PC): keep the cloud's version, or merge "
                           f"values that refer to an existing row of {parent}")
    if diag.sqlstate in ("23505", "23P01"):
        return CcsyncError(f"{what}: another row of {table} already has the same value for {diag.constraint_name}: "
                           "keep the cloud's version, or merge other values")
    return CcsyncError(f"{what}: {diag.constraint_name or 'a constraint'} on {table} refuses it "
                       f"(SQLSTATE {diag.sqlstate}): keep the cloud's version, or merge other values")


def _locked(conn, conflict_id: int) -> dict:
    found = _records(conn, "where id = %s for update", (conflict_id,))
    if not found:
        raise UnknownConflict(f"no conflict {conflict_id}: `ccsync conflicts list` shows the open ones")
    return found[0]


def _check_decidable(c: dict, keep: str, revisit: bool) -> None:
    refused = c["kind"] == Kind.REFUSED
    if refused and keep not in REFUSAL_CHOICES:
        raise CcsyncError(f"record {c['id']} is a refused transaction: discard it or apply it again")
    if not refused and keep not in CONFLICT_CHOICES:
        raise CcsyncError(f"conflict {c['id']}: keep local, cloud or merged")
    if c["status"] != "open" and not revisit:
        raise AlreadyResolved(
            f"conflict {c['id']} was already resolved ({c['resolution']}) by {c['resolved_by']} "
            f"at {c['resolved_at']:%Y-%m-%d %H:%M:%S %Z}; revisit it to decide again"
        )
    if c["status"] == "open" and revisit:
        raise CcsyncError(f"conflict {c['id']} has no decision yet: decide it, there is nothing to revisit")


def _decide(conn, c: dict, keep: str, by: str, chosen: str | None, revisit: bool) -> None:
    """The decision: the record updated here, journaled in the transaction of the values it chose; the push
    brings both to the cloud, which settles it (ccsync.decide)."""
    _apply.applying(conn, False)
    resolution = {"discard": "discarded", "apply-again": "applied again"}.get(keep, f"kept {keep}")
    conn.execute(
        "update ccsync.conflicts set status = 'resolved', resolution = %s, resolved_by = %s, resolved_at = now(), "
        "resolved_row = %s::jsonb, decision = gen_random_uuid() where id = %s",
        (("revisited: " if revisit else "") + resolution, by, chosen, c["id"]),
    )


def _apply_again(conn, c: dict) -> None:
    """The refused transaction's changes, written again here as new local changes (journaled as usual)."""
    _apply.applying(conn, False)
    changes = conn.execute(
        "select e ->> 'table', e ->> 'op', (e -> 'pk')::text, "
        "       (case when e ->> 'op' = 'U' then ccsync.changed(e -> 'old', e -> 'new') else e -> 'new' end)::text, "
        "(coalesce(e -> 'old', '{}') || (e -> 'pk') || coalesce(e -> 'new', '{}'))::text "
        "from jsonb_array_elements(%s::jsonb) e", (c["changes"],)).fetchall()
    for table, op, pk, new, whole in changes:
        t = Table.load(conn, table)
        if t is None:
            raise CcsyncError(f"table {table} no longer exists on this database: the change cannot be applied again")
        try:
            with conn.transaction():
                if op == "I":
                    _apply.upsert_images(conn, t, [new])
                elif op == "U" and _apply.fetch_images(conn, t, [pk]):
                    _apply.rekey_to_image(conn, t, pk, new)
                elif op == "U":  # the row is gone here: what the change knew of it
                    _apply.upsert_images(conn, t, [whole])
                elif op == "D":
                    _apply.delete_keys(conn, t, [pk])
        except psycopg.errors.IntegrityError as exc:
            raise CcsyncError(f"record {c['id']} cannot be applied again on this PC ({exc.diag.message_primary}): "
                              "fix the data first, or discard it") from None


def _target(conn, c: dict, keep: str, merged_text: str | None, revisit: bool = False) -> str | None:
    """The row a decision writes (jsonb text; None: the record is deleted). The one place that says it, for the
    resolution itself and for its preview. A merge writes its values over the version in place: the cloud's,
    or for a revisit the decision in force (a field it leaves out keeps what the first decision wrote)."""
    cloud_row, local_row = c["cloud_row"], c["local_row"]
    if keep == "cloud":
        return cloud_row
    if keep == "merged":
        in_force = _in_place(conn, c, True) if revisit else None
        return conn.execute(
            "select coalesce(%s::jsonb, %s::jsonb, %s::jsonb, '{}') || %s::jsonb || %s::jsonb",
            (in_force, cloud_row, local_row, merged_text, c["pk"]),
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


def _in_place(conn, c: dict, revisit: bool) -> str | None:
    """The version a decision replaces: the cloud's (in place everywhere until the first decision); for a
    revisit, the row as it is now on this PC (the decision in force)."""
    if not revisit:
        return c["cloud_row"]
    t = Table.load(conn, c["table_name"])
    if t is None:
        raise CcsyncError(f"table {c['table_name']} no longer exists on this database")
    return _apply.fetch_images(conn, t, [c["pk"]]).get(_apply.key_of(c["pk"]))


def preview(conn: psycopg.Connection, conflict_id: int, keep: str, *, merged: str | dict | None = None,
            revisit: bool = False) -> dict:
    """What a decision would write, without writing it: {action, row, changes, entries}.

    A conflict: action update, insert, delete or none; row: the record as it would be everywhere (null when
    deleted); changes: [{column, now, then}], `now` the value in place (the cloud's; for a revisit, the
    decision in force), `then` the value after the decision. A refused transaction: action discard or
    apply-again; entries: the changes apply-again writes, in order [{op, table, pk, row}]."""
    if keep not in CONFLICT_CHOICES + REFUSAL_CHOICES:
        raise CcsyncError(f"unknown choice {keep!r}: keep local, cloud or merged (a refusal: discard or apply-again)")
    merged_text = _merged_text(merged) if keep == "merged" else None
    with conn.transaction():
        _db.canonical(conn, local=True)
        found = _records(conn, "where id = %s", (conflict_id,))
        if not found:
            raise UnknownConflict(f"no conflict {conflict_id}: `ccsync conflicts list` shows the open ones")
        c = found[0]
        _check_decidable(c, keep, revisit)
        if c["kind"] == Kind.REFUSED:
            entries = [{"op": e.get("op"), "table": e.get("table"), "pk": e.get("pk"),
                        "row": None if e.get("op") == "D" else e.get("new")} for e in parse(c["changes"]) or []]
            return {"action": keep, "row": None, "changes": [], "entries": entries if keep == "apply-again" else []}
        target = _target(conn, c, keep, merged_text, revisit)
        in_place = _in_place(conn, c, revisit)
    now, then = parse(in_place), parse(target)
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
    return {"action": action, "row": then, "changes": changes, "entries": []}


def _merged_text(merged: str | dict | None) -> str:
    text = merged if isinstance(merged, str) else json.dumps(merged)
    try:
        doc = parse(text)
    except (TypeError, ValueError):
        raise CcsyncError("the merged row is not valid JSON: give an object of column: value") from None
    if not isinstance(doc, dict):
        raise CcsyncError("the merged row must be a JSON object of column: value")
    return text


def _write_resolution(conn, t: Table, c: dict, keep: str, merged_text: str | None, revisit: bool = False) -> str | None:
    """Write the chosen version locally (the trigger stays quiet) and journal it by hand against the cloud's
    (a revisit: against the row as it is now, the first decision's)."""
    target = _target(conn, c, keep, merged_text, revisit)
    if keep == "cloud" and not revisit:
        return target
    cloud_row = _in_place(conn, c, revisit)  # the version the journaled change is made against
    if revisit and target == cloud_row:
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
