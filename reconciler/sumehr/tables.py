"""The SQL of the Sumehr publisher: the application's tables as configured, checked, and the queries over them.

ccsync does not own the application's schema: the table of Sumehr documents and the patient's privacy flag
come from ccsync.toml. Their names are looked up in the catalog (so quoting follows SQL) and composed with
psycopg.sql.Identifier, never formatted into a query.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from ..errors import CcsyncError

STATE = sql.SQL("ccsync.sumehr_state")


@dataclass(frozen=True)
class AppTables:
    """The configured application tables, resolved in one database."""

    documents: sql.Composed
    patient: sql.Identifier
    version: sql.Identifier
    kmehr: sql.Identifier
    created: sql.Identifier
    patients: sql.Composed
    key: sql.Identifier
    flag: sql.Identifier

    # -- the queries -------------------------------------------------------------------------------
    def flagged(self) -> sql.Composed:
        """Every patient whose flag is on and who has a Sumehr: native key, key as text, latest version,
        creation time of the first version newer than the HUB's, and the publication state (null columns
        without a state row)."""
        return sql.SQL(
            "select p.{key} as key, p.{key}::text as patient, l.latest, l.first_newer, s.latest_version, "
            "s.hub_version, s.state, s.reason, s.since, s.attempts, s.last_attempt, s.next_attempt, "
            "s.hub_transaction_id "
            "from {patients} p "
            "left join ccsync.sumehr_state s on s.patient = p.{key}::text "
            "cross join lateral ("
            "  select max(d.{version})::bigint as latest, "
            "         (min(d.{created}) filter (where d.{version} > coalesce(s.hub_version, -1)))::timestamptz "
            "         as first_newer "
            "  from {documents} d where d.{patient} = p.{key}) l "
            "where p.{flag} is true and l.latest is not null"
        ).format(**self._names())

    def upsert_state(self) -> sql.Composed:
        """Bring latest_version up to date for every flagged patient (cloud only); a new version starts a
        fresh publication (pending, no backoff); rows that did not change are not written (no journal churn)."""
        up = sql.SQL("coalesce(s.hub_version, -1) >= excluded.latest_version")
        newer = sql.SQL("(excluded.latest_version > coalesce(s.latest_version, -1))")
        fresh = sql.SQL("({up} or {newer})").format(up=up, newer=newer)
        state = sql.SQL(
            "(case when {up} then 'up_to_date' when {newer} then 'pending' else s.state end)"
        ).format(up=up, newer=newer)
        return sql.SQL(
            "insert into ccsync.sumehr_state as s (patient, latest_version, state, since) "
            "select c.patient, c.latest, case when coalesce(c.hub_version, -1) >= c.latest then 'up_to_date' "
            "else 'pending' end, least(coalesce(c.first_newer, now()), now()) "
            "from ({flagged}) c order by c.patient "
            "on conflict (patient) do update set "
            "latest_version = excluded.latest_version, "
            "state = {state}, "
            "reason = case when {fresh} then null else s.reason end, "
            "attempts = case when {fresh} then 0 else s.attempts end, "
            "next_attempt = case when {fresh} then null else s.next_attempt end, "
            "since = case when (s.state = 'up_to_date') = ({state} = 'up_to_date') then s.since "
            "when {up} then now() else excluded.since end, "
            "updated_at = now() "
            "where s.latest_version is distinct from excluded.latest_version"
        ).format(flagged=self.flagged(), state=state, fresh=fresh, up=up)

    def to_publish(self) -> sql.Composed:
        """The flagged patients whose HUB version is behind, with whether they are due and whether another
        publisher holds them. Parameter: clock (null: the database's now())."""
        return sql.SQL(
            "select p.{key}, s.patient, s.latest_version, s.hub_version, {due} as due, "
            "coalesce(s.claimed_until >= now(), false) as busy "
            "from ccsync.sumehr_state s join {patients} p on p.{key}::text = s.patient and p.{flag} is true "
            "where s.state <> 'up_to_date' and s.latest_version > coalesce(s.hub_version, -1) "
            "order by s.since, s.patient"
        ).format(due=DUE, **self._names())

    def claim(self) -> sql.Composed:
        """Take one patient for this publisher, committed before anything is sent; re-checked under the row
        lock, so of two publishers one gets the row and the other gets nothing.
        Parameters: node, seconds, patient, key, clock."""
        return sql.SQL(
            "update ccsync.sumehr_state s set claimed_by = %(node)s, "
            "claimed_until = now() + make_interval(secs => %(seconds)s), updated_at = now() "
            "where s.patient = %(patient)s and s.state <> 'up_to_date' "
            "and s.latest_version > coalesce(s.hub_version, -1) and {due} "
            "and (s.claimed_until is null or s.claimed_until < now()) "
            "and exists (select 1 from {patients} p where p.{key} = %(key)s and p.{flag} is true) "
            "returning s.hub_version, s.claimed_until"
        ).format(due=DUE, **self._names())

    def latest_document(self) -> sql.Composed:
        """The newest Sumehr of one patient (parameter: key, the patient's native key)."""
        return sql.SQL(
            "select d.{version}::bigint, d.{kmehr} from {documents} d where d.{patient} = %(key)s "
            "order by d.{version} desc limit 1"
        ).format(**self._names())

    def is_patient(self) -> sql.Composed:
        """Whether a patient (by key as text) exists with the flag on."""
        return sql.SQL("select exists (select 1 from {patients} p where p.{key}::text = %s and p.{flag} is true)"
                       ).format(**self._names())

    def _names(self) -> dict:
        return {"documents": self.documents, "patient": self.patient, "version": self.version,
                "kmehr": self.kmehr, "created": self.created, "patients": self.patients, "key": self.key,
                "flag": self.flag}


# A failed row with no next attempt waits for a new version or `ccsync sumehr retry` (an invalid document).
DUE = sql.SQL("(s.next_attempt <= coalesce(%(clock)s::timestamptz, now()) "
              "or (s.next_attempt is null and s.state = 'pending'))")


def resolve(conn: psycopg.Connection, cfg, where: str) -> AppTables:
    """Look the configured tables and columns up in this database; one clear line when one is missing."""
    docs_table, docs_columns = _table(conn, cfg.documents_table, "documents_table", where)
    patients_table, patients_columns = _table(conn, cfg.patients_table, "patients_table", where)
    for option in ("patient_column", "version_column", "kmehr_column", "created_column"):
        _column(docs_columns, getattr(cfg, option), option, cfg.documents_table, where)
    _column(patients_columns, cfg.patients_key, "patients_key", cfg.patients_table, where)
    flag_type = _column(patients_columns, cfg.flag_column, "flag_column", cfg.patients_table, where)
    if flag_type != "boolean":
        raise CcsyncError(
            f"Sumehr configuration: {cfg.patients_table}.{cfg.flag_column} is {flag_type}, not boolean: "
            "set [sumehr] flag_column in ccsync.toml to the patient's boolean privacy flag"
        )
    return AppTables(
        documents=docs_table, patient=sql.Identifier(cfg.patient_column), version=sql.Identifier(cfg.version_column),
        kmehr=sql.Identifier(cfg.kmehr_column), created=sql.Identifier(cfg.created_column),
        patients=patients_table, key=sql.Identifier(cfg.patients_key), flag=sql.Identifier(cfg.flag_column),
    )


def state_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('ccsync.sumehr_state') is not null").fetchone()[0]


def _table(conn, name: str, option: str, where: str) -> tuple[sql.Composed, dict[str, str]]:
    try:
        row = conn.execute(
            "select n.nspname, c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.oid = to_regclass(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f')",
            (name,),
        ).fetchone()
    except (psycopg.errors.InvalidName, psycopg.errors.SyntaxError) as exc:  # e.g. too many dotted names
        raise CcsyncError(f"Sumehr configuration: [sumehr] {option} = {name!r} is not a table name "
                          f"({exc.diag.message_primary}): fix it in ccsync.toml") from None
    if row is None:
        raise CcsyncError(f"Sumehr configuration: table {name!r} does not exist in the {where}: create it, or set "
                          f"[sumehr] {option} in ccsync.toml")
    columns = dict(conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = %s and attnum > 0 and not attisdropped",
        (row[2],),
    ).fetchall())
    return sql.SQL(".").join([sql.Identifier(row[0]), sql.Identifier(row[1])]), columns


def _column(columns: dict[str, str], name: str, option: str, table: str, where: str) -> str:
    if name not in columns:
        raise CcsyncError(f"Sumehr configuration: column {name!r} does not exist in {table} in the {where}: "
                          f"set [sumehr] {option} in ccsync.toml")
    return columns[name]
