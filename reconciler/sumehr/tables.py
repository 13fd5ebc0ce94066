"""The SQL of the Sumehr publisher: the application's tables as configured, checked, and the queries over them.

ccsync does not own the application's schema: the table of Sumehr documents, the patient's privacy flag, INSS
and name come from ccsync.toml. Their names are looked up in the catalog (so quoting follows SQL) and composed
with psycopg.sql.Identifier, never formatted into a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ..errors import CcsyncError

_WHOLE_NUMBERS = ("smallint", "integer", "bigint")

# Names the patient's name columns often have, tried in this order when [sumehr] name_columns is not set.
_NAME_GUESSES = (("first_name", "last_name"), ("firstname", "lastname"), ("name",), ("full_name",))


@dataclass(frozen=True)
class PatientRow:
    """A patient with at least one Sumehr, as the documents and the replicated publication state say."""

    key: Any  # the patient's key in its own type (so 10 sorts after 9)
    patient: str  # the key as text: how ccsync.sumehr_state names the patient
    consent: bool
    name: str | None
    inss: str | None
    latest: int  # the latest version among the documents
    first_newer: datetime | None  # when the first version newer than the HUB's was written
    s_latest: int | None  # the state row (all None when there is none yet)
    hub_version: int | None
    s_state: str | None
    s_reason: str | None
    s_since: datetime | None
    attempts: int | None
    last_attempt: datetime | None
    next_attempt: datetime | None
    hub_transaction_id: str | None


@dataclass(frozen=True)
class Due:
    """A consenting patient whose HUB version is behind."""

    key: Any
    patient: str
    due: bool  # false: waiting for its backoff, or an invalid document waiting for a new version


@dataclass(frozen=True)
class Document:
    """A patient's newest Sumehr, with the INSS of the patient's own record to check it against."""

    version: int
    document: str | bytes | None  # text, xml or bytea columns: both parse the same; None: empty, or too large
    size: int | None  # bytes (None: no document)
    inss: str | None
    inss_shared: bool  # another patient's record holds the same INSS (in any notation)


@dataclass(frozen=True)
class AppTables:
    """The configured application tables, resolved in one database."""

    documents: sql.Identifier
    patient: sql.Identifier
    version: sql.Identifier
    kmehr: sql.Identifier
    created: sql.Identifier
    patients: sql.Identifier
    key: sql.Identifier
    flag: sql.Identifier
    inss: sql.Identifier
    names: tuple[sql.Identifier, ...]
    inss_is_number: bool = False  # a number column has lost the INSS's leading zero
    kmehr_is_bytea: bool = False

    # -- the queries -------------------------------------------------------------------------------
    def with_documents(self, *, consenting_only: bool) -> sql.Composed:
        """Every patient with at least one Sumehr (only those whose flag is on, with consenting_only), as
        PatientRow: the documents' latest version and the publication state (None without a state row)."""
        name = (sql.SQL("nullif(concat_ws(' ', {}), '')").format(
            sql.SQL(", ").join(sql.SQL("p.{}::text").format(column) for column in self.names))
            if self.names else sql.SQL("null::text"))
        return sql.SQL(
            "select p.{key} as key, p.{key}::text as patient, coalesce(p.{flag}, false) as consent, "
            "{name} as name, {p_inss} as inss, l.latest, "
            "case when l.first_newer between timestamptz '1970-01-01 00:00+00' and timestamptz '9999-01-01 00:00+00' "
            "     then l.first_newer end as first_newer, "  # a time Python can hold, whatever the application wrote
            "s.latest_version as s_latest, s.hub_version, s.state as s_state, s.reason as s_reason, "
            "s.since as s_since, s.attempts, s.last_attempt, s.next_attempt, s.hub_transaction_id "
            "from {patients} p "
            "left join ccsync.sumehr_state s on s.patient = p.{key}::text "
            "cross join lateral ("
            "  select max(d.{version})::bigint as latest, "
            "         (min(d.{created}) filter (where d.{version} > coalesce(s.hub_version, -1)))::timestamptz "
            "         as first_newer "
            "  from {documents} d where d.{patient} = p.{key}) l "
            "where l.latest is not null {consenting}"
        ).format(name=name, consenting=sql.SQL("and p.{flag} is true").format(flag=self.flag)
                 if consenting_only else sql.SQL(""), p_inss=self._inss("p"), **self._names())

    def to_publish(self) -> sql.Composed:
        """The consenting patients whose HUB version is behind, oldest first, as Due.
        Parameter: clock (null: the database's now())."""
        return sql.SQL(
            "select p.{key} as key, s.patient, {due} as due "
            "from ccsync.sumehr_state s join {patients} p on p.{key}::text = s.patient and p.{flag} is true "
            "where s.state <> 'up_to_date' and s.latest_version > coalesce(s.hub_version, -1) "
            "order by s.since, s.patient"
        ).format(due=DUE, **self._names())

    def latest_document(self) -> sql.Composed:
        """The newest Sumehr of one consenting patient, as Document (parameters: key, the patient's native key;
        max, the largest document read, in bytes: a larger one comes without its content); no row once the
        patient's flag is off. A document without a version is no version of the Sumehr: never the latest."""
        digits = sql.SQL("regexp_replace({}, '[^0-9]', '', 'g')")
        return sql.SQL(
            "select d.{version}::bigint as version, "
            "       case when {size} <= %(max)s then d.{kmehr} end as document, {size} as size, {p_inss} as inss, "
            "       exists (select 1 from {patients} o where o.{key} <> p.{key} and {o_digits} = {p_digits}) "
            "       as inss_shared "
            "from {documents} d join {patients} p on p.{key} = d.{patient} and p.{flag} is true "
            "where d.{patient} = %(key)s and d.{version} is not null order by d.{version} desc limit 1"
        ).format(size=self._size(), p_inss=self._inss("p"), o_digits=digits.format(self._inss("o")),
                 p_digits=digits.format(self._inss("p")), **self._names())

    def is_patient(self) -> sql.Composed:
        """Whether a patient (by key as text) exists with the flag on."""
        return sql.SQL("select exists (select 1 from {patients} p where p.{key}::text = %s and p.{flag} is true)"
                       ).format(**self._names())

    def _inss(self, alias: str) -> sql.Composed:
        """The INSS as text. One kept as a number has lost its leading zero (everyone born from 2000 to 2009):
        put it back."""
        text = sql.SQL("{}.{}::text").format(sql.Identifier(alias), self.inss)
        return sql.SQL("lpad({}, 11, '0')").format(text) if self.inss_is_number else text

    def _size(self) -> sql.Composed:
        """A document's size in bytes: bytea as it is, any other type as its text."""
        return sql.SQL("octet_length(d.{}{})").format(self.kmehr, sql.SQL("" if self.kmehr_is_bytea else "::text"))

    def _names(self) -> dict:
        return {"documents": self.documents, "patient": self.patient, "version": self.version,
                "kmehr": self.kmehr, "created": self.created, "patients": self.patients, "key": self.key,
                "flag": self.flag}


# A failed row is due after its backoff; an invalid one only after `ccsync sumehr retry` (or a new version,
# which makes the row pending again). ccsync.sumehr_claim checks the same rule under the row lock.
DUE = sql.SQL("(s.next_attempt <= coalesce(%(clock)s::timestamptz, now()) "
              "or (s.next_attempt is null and s.state = 'pending'))")


def resolve(conn: psycopg.Connection, cfg, where: str) -> AppTables:
    """Look the configured tables and columns up in this database; one clear line when one is missing."""
    docs_table, docs_columns = _table(conn, cfg.documents_table, "documents_table", where)
    patients_table, patients_columns = _table(conn, cfg.patients_table, "patients_table", where)
    for option in ("patient_column", "version_column", "kmehr_column", "created_column"):
        _column(docs_columns, getattr(cfg, option), option, cfg.documents_table, where)
    version_type = docs_columns[cfg.version_column]
    if version_type not in _WHOLE_NUMBERS and not version_type.startswith("numeric"):  # text: 10 < 9, "draft"...
        raise CcsyncError(
            f"Sumehr configuration: {cfg.documents_table}.{cfg.version_column} is {version_type}, not a number: "
            "set [sumehr] version_column in ccsync.toml to the document's version number"
        )
    _column(patients_columns, cfg.patients_key, "patients_key", cfg.patients_table, where)
    inss_type = _column(patients_columns, cfg.inss_column, "inss_column", cfg.patients_table, where,
                        why=" (the patient's INSS, to check that each Sumehr is about that very patient)")
    flag_type = _column(patients_columns, cfg.flag_column, "flag_column", cfg.patients_table, where)
    if flag_type != "boolean":
        raise CcsyncError(
            f"Sumehr configuration: {cfg.patients_table}.{cfg.flag_column} is {flag_type}, not boolean: "
            "set [sumehr] flag_column in ccsync.toml to the patient's boolean privacy flag"
        )
    if cfg.name_columns is None:
        names = next((guess for guess in _NAME_GUESSES if all(c in patients_columns for c in guess)), ())
    else:
        names = tuple(cfg.name_columns)
        for column in names:
            _column(patients_columns, column, "name_columns", cfg.patients_table, where)
    return AppTables(
        documents=docs_table, patient=sql.Identifier(cfg.patient_column), version=sql.Identifier(cfg.version_column),
        kmehr=sql.Identifier(cfg.kmehr_column), created=sql.Identifier(cfg.created_column),
        patients=patients_table, key=sql.Identifier(cfg.patients_key), flag=sql.Identifier(cfg.flag_column),
        inss=sql.Identifier(cfg.inss_column), names=tuple(sql.Identifier(c) for c in names),
        inss_is_number=inss_type in _WHOLE_NUMBERS or inss_type.startswith("numeric"),
        kmehr_is_bytea=docs_columns[cfg.kmehr_column] == "bytea",
    )


def state_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('ccsync.sumehr_state') is not null").fetchone()[0]


def _table(conn, name: str, option: str, where: str) -> tuple[sql.Identifier, dict[str, str]]:
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
    schema, relname, oid = row
    columns = dict(conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = %s and attnum > 0 and not attisdropped",
        (oid,),
    ).fetchall())
    return sql.Identifier(schema, relname), columns


def _column(columns: dict[str, str], name: str, option: str, table: str, where: str, why: str = "") -> str:
    if name not in columns:
        raise CcsyncError(f"Sumehr configuration: column {name!r} does not exist in {table} in the {where}{why}: "
                          f"set [sumehr] {option} in ccsync.toml")
    return columns[name]
