"""The ccsync command line: thin click commands over the reconciler package."""

from __future__ import annotations

import functools
import json
import sys

import click

import reconciler
from reconciler.errors import CcsyncError


# -- shared pieces --------------------------------------------------------------------------------
def handle_errors(fn):
    """Turn a reconciler error into one line on stderr and exit status 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CcsyncError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


dsn_option = click.option(
    "--dsn", envvar="CCSYNC_DSN", required=True, metavar="DSN",
    help="PostgreSQL connection string or URI of the database (or $CCSYNC_DSN).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


def emit_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ccsync")
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
@click.option("--force", is_flag=True, help="Uninstall even though local changes have not been pushed.")
@handle_errors
def uninstall(dsn, force):
    """Remove every capture trigger and the ccsync schema.

    Refuses while journaled changes have not been pushed, unless --force.

    Example: ccsync uninstall --dsn "host=pc1 dbname=practice"
    """
    result = reconciler.uninstall(dsn, force=force)
    click.echo(f"ccsync uninstalled from {result['name']!r} ({len(result['untracked'])} table(s) untracked)")


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

    JSON: a list of {table, primary_key, policy, tracked_at, journaled}.

    Example: ccsync tables --dsn "$DSN" --json
    """
    rows = reconciler.tables(dsn)
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no table is tracked: add one with `ccsync track`")
    for r in rows:
        click.echo(f"{r['table']:40} pk=({', '.join(r['primary_key'])}) policy={r['policy']} journaled={r['journaled']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
