"""Every command example in the README is real: each `ccsync` line parses with the CLI as written, each example
is mapped below to the test that runs it (or to why no test can, and what covers it instead), and the examples
that can run here as written do."""

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

import cli
from reconciler.schema import HEAD

pytestmark = pytest.mark.one_version
ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8").split("<!-- cli-reference:start -->")[0]

MACHINE = "not run by a test: it changes the machine's users or services"
WINDOWS = ("not run by a test: Windows only; tests/test_units.py::test_the_service_and_the_panel_use_no_posix_only_call "
           "keeps the service's code free of POSIX-only calls")

ROLES = "tests/security/test_readme.py::test_the_readme_roles_give_a_working_cloud_pc_and_application"
SQL_GRANTS = "tests/security/test_readme.py::test_the_readme_sql_grants_do_what_pc_add_and_grant_do"

# example (comments stripped, spaces collapsed) -> the test that runs it, or "not run by a test: why"
EXAMPLES = {
    # quick start
    "make demo": "tests/devtools/test_demo.py::test_the_demo_plays_again_on_its_own_data_and_starts_over_with_reset",
    "make test": "not run by a test: it is the test suite (.ci/run runs it)",
    'make test PYTEST_ARGS="tests/engine -x"': "not run by a test: a part of the test suite",
    'make demo DEMO_ARGS=--reset': "tests/devtools/test_demo.py::test_the_demo_plays_again_on_its_own_data_and_starts_over_with_reset",
    'make demo DEMO_ARGS="--pace 10"': "tests/devtools/test_demo.py::test_the_demo_plays_again_on_its_own_data_and_starts_over_with_reset",
    "make docs": "tests/test_docs.py::test_readme_cli_reference_matches_the_commands",
    "make bench": "not run by a test: benchmarks measure, tests never assert timings",
    # the admin panel
    'ccsync panel-user add "Dr Peeters" --local "dbname=practice"':
        "tests/web/test_views.py::test_panel_user_add_reads_stdin_and_prints_a_token_once",
    "printf '%s\\n' \"$PW\" | ccsync panel-user add robot --token":
        "tests/web/test_views.py::test_panel_user_add_reads_stdin_and_prints_a_token_once",
    "ccsync panel --port 8600": "tests/web/test_views.py::test_ccsync_panel_serves_with_waitress_on_127_0_0_1",
    "ccsync panel": "tests/web/test_views.py::test_ccsync_panel_serves_with_waitress_on_127_0_0_1",
    'curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8600/api/status':
        "tests/web/test_views.py::test_a_token_authenticates_api_calls_and_its_posts_need_no_csrf",
    # installing on real servers
    'ccsync install --dsn "host=cloud.example dbname=practice user=practice_owner" --name cloud':
        "tests/test_upgrade.py::test_the_readme_upgrade_steps_in_order_bring_every_write_across",
    'ccsync install --dsn "dbname=practice" --name pc-reception':
        "tests/test_upgrade.py::test_the_readme_upgrade_steps_in_order_bring_every_write_across",
    "ccsync install": "tests/test_upgrade.py::test_the_readme_upgrade_steps_in_order_bring_every_write_across",
    "ccsync init": "tests/test_progress.py::test_init_logs_progress_lines_and_counts_the_tables_a_person_tracked",
    "ccsync init --force": "tests/test_upgrade.py::test_a_pc_newer_than_its_cloud_refuses_with_one_line_naming_the_order",
    "ccsync nodes list": "tests/test_nodes.py::test_nodes_list_shows_each_pc_its_syncs_what_it_lacks_and_who_holds_back_pruning",
    "ccsync nodes remove NAME": "tests/test_nodes.py::test_removing_a_pc_lets_the_cloud_prune_what_only_it_lacked",
    "ccsync run": "tests/test_service.py::test_a_cloud_change_reaches_the_node_without_any_command",
    "ccsync run -v": "tests/test_upgrade.py::test_the_service_says_why_it_cannot_sync_and_keeps_the_pc_working_offline",
    "ccsync login": "tests/test_service.py::test_login_pulls_what_the_node_lacks_and_says_so",
    "ccsync status --json": "tests/test_service.py::test_status_json_keys_and_values",
    # the panel's light, history and display labels
    "ccsync status": "tests/test_status.py::test_no_service_is_attention_and_the_application_uses_the_cloud_while_it_answers",
    "ccsync history": "tests/web/test_people.py::test_history_filters_pages_and_the_same_defaults_in_panel_and_cli",
    "ccsync label": "tests/web/test_people.py::test_ccsync_label_command",
    'ccsync label --dsn "$CLOUD_OWNER_DSN" public.patients --columns last_name,first_name':
        "tests/web/test_people.py::test_ccsync_label_command",
    # running as a service
    "sudo useradd --system --home-dir /var/lib/ccsync --shell /usr/sbin/nologin ccsync": MACHINE,
    "sudo install -d -m 0750 -o root -g ccsync /etc/ccsync": MACHINE,
    "sudo install -m 0640 -o root -g ccsync ccsync.toml /etc/ccsync/ccsync.toml": MACHINE,
    "sudo ccsync service-units --output /etc/systemd/system --login-output /etc/systemd/user":
        "tests/test_units.py::test_the_login_unit_goes_where_user_units_belong",
    "ccsync service-units": "tests/test_units.py::test_the_units_parse_and_use_only_keys_systemd_knows",
    "sudo systemctl daemon-reload": MACHINE,
    "sudo systemctl enable --now ccsync.service ccsync-panel.service":
        MACHINE + "; tests/test_units.py::test_systemd_verifies_the_units_without_a_warning verifies the units",
    "sudo systemctl --global enable ccsync-login.service":
        MACHINE + "; tests/test_units.py::test_systemd_verifies_the_units_without_a_warning verifies the unit",
    "journalctl -u ccsync -u ccsync-panel -f": MACHINE,
    r"nssm install ccsync C:\ccsync\Scripts\ccsync.exe run": WINDOWS,
    r"nssm set ccsync AppDirectory C:\ProgramData\ccsync": WINDOWS,
    r"nssm set ccsync AppEnvironmentExtra CCSYNC_CONFIG=C:\ProgramData\ccsync\ccsync.toml": WINDOWS,
    r"nssm set ccsync AppStderr C:\ProgramData\ccsync\ccsync.log": WINDOWS,
    "nssm start ccsync": WINDOWS,
    r'schtasks /Create /SC ONLOGON /TN "ccsync login" /TR "C:\ccsync\Scripts\ccsync.exe login"': WINDOWS,
    # upgrading
    "sudo systemctl stop ccsync ccsync-panel": MACHINE,
    "sudo systemctl start ccsync ccsync-panel": MACHINE,
    "pip install --upgrade ccsync": "not run by a test: it needs a newer release; tests/test_packaging.py "
                                    "installs the built wheel",
    "ccsync --version": "tests/test_readme.py::test_ccsync_version_says_what_the_readme_shows",
    # Sumehr on the HUB
    "ccsync sumehr list": "tests/sumehr/test_publisher.py::test_sumehr_cli_json_keys_and_one_line_errors",
    "ccsync sumehr retry": "tests/sumehr/test_publisher.py::test_sumehr_cli_json_keys_and_one_line_errors",
    "ccsync status": "tests/sumehr/test_publisher.py::test_without_a_hub_nothing_is_published_or_counted_and_status_"
                     "says_so",
    # the roles (core's tests run the README's role statements)
    'ccsync install --dsn "$CLOUD_OWNER" --name cloud': ROLES,
    'ccsync track --dsn "$CLOUD_OWNER" patients encounters': ROLES,
    'ccsync grant --dsn "$CLOUD_OWNER" --app-role practice_app': ROLES,
    "printf '%s\\n' \"$PC_PASSWORD\" | ccsync pc add pc-reception --role ccsync_pc_reception --create-role "
    '--dsn "$CLOUD_OWNER"': ROLES,
    'ccsync install --dsn "$PC_OWNER" --name pc-reception': ROLES,
    'ccsync grant --dsn "$PC_OWNER" --app-role practice_app': ROLES,
    'ccsync init --local "$PC_OWNER" --cloud "$PC_CLOUD"': ROLES,
    'ccsync run --local "$PC_OWNER" --cloud "$PC_CLOUD"': ROLES,
    'psql "$CLOUD_OWNER" -c "create role ccsync_pc_reception login"': SQL_GRANTS,
    'psql "$CLOUD_OWNER" -v node=pc-reception -v pc_role=ccsync_pc_reception -v app_role=practice_app '
    '-f sql/grants.sql': SQL_GRANTS,
    'psql "$PC_OWNER" -v app_role=practice_app -f sql/grants.sql': SQL_GRANTS,
    "ccsync pc add": "tests/security/test_roles.py::test_pc_add_creates_the_login_role_with_its_password_hashed_and_"
                     "moves_a_node_to_a_new_role",
    "ccsync pc add NODE --role ROLE": "tests/security/test_roles.py::test_pc_add_creates_the_login_role_with_its_"
                                      "password_hashed_and_moves_a_node_to_a_new_role",
    "ccsync pc add NODE --role ROLE --new-install":
        "tests/security/test_roles.py::test_a_second_installation_with_the_same_name_is_refused",
    "ccsync grant --app-role": ROLES,
    "ccsync grant --app-role ROLE": ROLES,
    "ccsync track": "tests/engine/test_invariants.py::test_schema_drift_is_refused_and_the_batch_stays_pending",
    "ccsync conflicts resolve ID --keep discard":
        "tests/engine/test_refusals.py::test_a_refused_transaction_is_applied_again_or_discarded_by_a_person",
}


def _normal(line: str) -> str:
    line = re.sub(r"\s+#.*$", "", line.strip()) if not line.startswith("printf") else \
        re.sub(r"\s+#\s.*$", "", line.strip())
    return " ".join(line.split())


def _code_block_lines() -> set[str]:
    return {_normal(line) for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S)
            for line in body.splitlines() if line.strip()}


def examples() -> list[str]:
    """The command lines of the README's code blocks, and the commands it quotes inline with their arguments."""
    found = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S):
        if lang in ("mermaid", "toml", "text"):
            continue
        found += [_normal(line) for line in body.splitlines() if line.strip() and not line.startswith("#")]
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    found += [s for s in re.findall(r"`([^`\n]+)`", prose) if re.match(r"(ccsync|make) \S", s)]
    return list(dict.fromkeys(found))


def test_every_readme_example_is_mapped_to_the_test_that_runs_it():
    unmapped = [e for e in examples() if e not in EXAMPLES]
    assert not unmapped, f"map each new README example to its test in EXAMPLES: {unmapped}"
    stale = [e for e in EXAMPLES if e not in examples()]
    assert not stale, f"these examples are no longer in the README: {stale}"


@pytest.mark.parametrize("target", sorted({t for t in EXAMPLES.values() if t.startswith("tests/")}))
def test_each_mapped_test_exists(target):
    path, name = target.split("::")
    module = importlib.import_module(path[:-3].replace("/", "."))
    assert callable(getattr(module, name, None)), f"{target} does not exist"


_CODE_BLOCK_LINES = _code_block_lines()


def _ccsync_args(example: str) -> list[str] | None:
    words = shlex.split(example.split("|")[-1])
    if words[:1] == ["sudo"]:
        words = words[1:]
    return words[1:] if words[:1] == ["ccsync"] else None


@pytest.mark.parametrize("example", [e for e in EXAMPLES if _ccsync_args(e) is not None])
def test_each_ccsync_example_parses_as_written(example, monkeypatch):
    """Options that exist, values of the right type, a command where a group needs one (the prose quotes
    commands without --dsn: it comes from $CCSYNC_DSN, as their help says)."""
    monkeypatch.setenv("CCSYNC_DSN", "dbname=practice")
    args = _ccsync_args(example)
    if args == ["--version"]:
        return  # run below
    command: click.Command = cli.main
    name, rest = "ccsync", list(args)
    while isinstance(command, click.Group):  # ccsync's groups take no option of their own
        assert rest, f"{example!r} names a group, not a command"
        name, rest = rest[0], rest[1:]
        command = command.commands.get(name)
        assert command is not None, f"no command {name!r} in {example!r}"
    if example in _CODE_BLOCK_LINES:  # raises on an unknown option, a bad value or a missing argument
        command.make_context(name, rest, resilient_parsing=False, **cli.main.context_settings)
    else:  # quoted in the prose (`ccsync grant --app-role`): the command and the options it names exist
        options = {o for param in command.params for o in getattr(param, "opts", [])}
        assert {w for w in rest if w.startswith("--")} <= options, example


def test_ccsync_version_says_what_the_readme_shows():
    shown = re.search(r"ccsync --version\s+#\s+(ccsync .*)", README).group(1).strip()
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "--version"], capture_output=True,
                          text=True, check=True)
    assert proc.stdout.strip().replace("-c", "ccsync") == shown
    assert shown.endswith(f"(schema {HEAD})")
