"""The service unit files (`ccsync service-units`): systemd parses them without a warning, they run what the
README says, and the service code stays free of POSIX-only calls (the Windows route of the README)."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from reconciler import units

pytestmark = pytest.mark.one_version
ROOT = Path(__file__).resolve().parent.parent
CCSYNC = str(Path(sys.executable).parent / "ccsync")

# the keys the units may use, per section (a typo is a key systemd ignores: the service would run without it)
KNOWN = {
    "Unit": {"Description", "Wants", "After", "StartLimitIntervalSec"},
    "Service": {"Type", "User", "Group", "StateDirectory", "StateDirectoryMode", "ReadWritePaths", "WorkingDirectory",
                "Environment", "ExecStart", "KillSignal", "TimeoutStopSec", "TimeoutStartSec", "Restart", "RestartSec",
                "StandardOutput", "StandardError", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"},
    "Install": {"WantedBy"},
}


def written(tmp_path, *args) -> dict[str, Path]:
    out = tmp_path / "units"
    out.mkdir()
    result = CliRunner().invoke(cli.main, ["service-units", "--exec", CCSYNC, "--output", str(out), *args])
    assert result.exit_code == 0, result.output
    return {p.name: p for p in out.iterdir()}


def parse(path: Path) -> dict[str, dict[str, str]]:
    """A unit file as systemd reads it: sections of Key=value lines (a key given twice, as Environment, adds up)."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep and key == key.strip() and key, f"{path.name}:{number}: {line!r}"
        current[key] = f"{current[key]} {value}" if key in current else value
    return sections


def systemd_verify(*paths: Path, user: bool = False, runtime: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"XDG_RUNTIME_DIR": str(runtime)} if runtime else {})}
    return subprocess.run(["systemd-analyze", *(["--user"] if user else []), "verify", *map(str, paths)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_the_units_parse_and_use_only_keys_systemd_knows(tmp_path):
    files = written(tmp_path, "--panel-port", "8611")
    assert sorted(files) == ["ccsync-login.service", "ccsync-panel.service", "ccsync.service"]
    for name, path in files.items():
        unit = parse(path)
        assert set(unit) == {"Unit", "Service", "Install"}
        for section in unit:
            assert set(unit[section]) <= KNOWN[section], (name, set(unit[section]) - KNOWN[section])
    service, panel, login = (parse(files[n])["Service"] for n in ("ccsync.service", "ccsync-panel.service",
                                                                   "ccsync-login.service"))
    assert service["ExecStart"] == f"{CCSYNC} run" and panel["ExecStart"] == f"{CCSYNC} panel --port 8611"
    assert login["ExecStart"] == f"{CCSYNC} login" and login["Type"] == "oneshot"
    for s in (service, panel):
        assert s["User"] == "ccsync" and s["WorkingDirectory"] == "/var/lib/ccsync"
        assert "CCSYNC_CONFIG=/etc/ccsync/ccsync.toml" in s["Environment"]
        assert s["Restart"] == "on-failure" and s["KillSignal"] == "SIGTERM"
        assert s["StandardError"] == "journal"


def test_systemd_verifies_the_units_without_a_warning(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the parser check above covers the syntax")
    files = written(tmp_path, "--user", "root")
    system = systemd_verify(files["ccsync.service"], files["ccsync-panel.service"])
    assert system.returncode == 0 and system.stderr == "", system.stderr
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    user = systemd_verify(files["ccsync-login.service"], user=True, runtime=runtime)
    assert user.returncode == 0 and user.stderr == "", user.stderr
    # the check can fail: a key systemd does not know is reported
    bad = files["ccsync.service"].with_name("bad.service")
    bad.write_text(files["ccsync.service"].read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "sometimes" in systemd_verify(bad).stderr


def test_the_login_unit_goes_where_user_units_belong(tmp_path):
    system, user = tmp_path / "system", tmp_path / "user"
    system.mkdir(), user.mkdir()
    result = CliRunner().invoke(cli.main, ["service-units", "--exec", CCSYNC, "--output", str(system),
                                           "--login-output", str(user)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in system.iterdir()) == ["ccsync-panel.service", "ccsync.service"]
    assert [p.name for p in user.iterdir()] == ["ccsync-login.service"]


def test_paths_with_spaces_and_percent_signs_are_quoted(tmp_path):
    spec = units.Units(config="/etc/cc sync/100%.toml", state_dir="/srv/cc sync", executable="/opt/cc sync/bin/ccsync")
    service = units.systemd_units(spec)["ccsync.service"]
    assert "ExecStart='/opt/cc sync/bin/ccsync' run" in service
    assert "Environment=CCSYNC_CONFIG='/etc/cc sync/100%%.toml'" in service
    assert "ReadWritePaths='/srv/cc sync'" in service and "StateDirectory" not in service


def test_bad_input_is_one_line(tmp_path):
    result = CliRunner().invoke(cli.main, ["service-units", "--output", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "is not a folder" in result.output
    relative = CliRunner().invoke(cli.main, ["service-units", "--exec", "ccsync"])
    assert relative.exit_code == 1 and "must be an absolute path" in relative.output


# -- the Windows route: the service runs under a service wrapper, so its code must not need POSIX ----------------
POSIX_ONLY = {"fcntl", "pwd", "grp", "termios", "resource", "posix"}
POSIX_ATTRS = {"os.fork", "os.geteuid", "os.getuid", "os.setsid", "os.killpg", "os.chown", "os.getpgid",
               "signal.SIGHUP", "signal.SIGKILL", "signal.SIGALRM", "signal.SIGUSR1", "signal.SIGUSR2", "signal.alarm",
               "signal.SIGQUIT", "signal.SIGCHLD", "signal.pause"}
# fault injection for the crash tests: reached only with CCSYNC_FAULT set, never in a service
TEST_ONLY = {"reconciler/engine/faults.py"}
SERVICE_FILES = ["cli.py", *(str(p.relative_to(ROOT)) for p in (ROOT / "reconciler").rglob("*.py")
                             if "devtools" not in p.parts), *(str(p.relative_to(ROOT)) for p in (ROOT / "web").glob("*.py"))]


@pytest.mark.parametrize("path", sorted(set(SERVICE_FILES) - TEST_ONLY))
def test_the_service_and_the_panel_use_no_posix_only_call(path):
    tree = ast.parse((ROOT / path).read_text())
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] in POSIX_ONLY]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in POSIX_ONLY:
            bad.append(node.module)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if f"{node.value.id}.{node.attr}" in POSIX_ATTRS:
                bad.append(f"{node.value.id}.{node.attr}")
    assert not bad, f"{path} uses {bad}: not available on Windows, where the service runs under a service wrapper"
