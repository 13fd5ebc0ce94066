"""ccsync.toml is checked when it is read: one line per problem, never a traceback; a readable secret is warned about."""

import logging
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from reconciler import config
from reconciler.config import check, load_file, secrets_in
from reconciler.errors import CcsyncError

pytestmark = pytest.mark.one_version

scalars = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.dates(), st.times())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
keys = st.one_of(st.sampled_from([*config.TOP_LEVEL, *config.SECTIONS]), st.text(min_size=1, max_size=12))


def has_non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_any_document_gets_one_line_per_problem_and_nothing_else(doc):
    problems = check(doc)
    assert all(isinstance(p, str) and p and "\n" not in p for p in problems)
    for key, value in doc.items():
        if key not in config.TOP_LEVEL and key not in config.SECTIONS:
            assert any(repr(key) in p and "unknown key" in p for p in problems)
        elif key in config.TOP_LEVEL and not (isinstance(value, str) and value.strip()):
            assert any(p.startswith(f"{key} must be a non-empty string") for p in problems)
        elif key in config.SECTIONS and not isinstance(value, dict):
            assert any(p.startswith(f"{key} must be a table") for p in problems)
    assert has_non_finite(doc) == any("is not a finite number" in p for p in problems)
    if not problems:  # a clean document: its DSNs are strings, its sections tables
        assert all(isinstance(doc[k], str) for k in config.TOP_LEVEL if k in doc)
        assert all(isinstance(doc[k], dict) for k in config.SECTIONS if k in doc)


def test_a_key_holding_a_line_break_stays_on_its_problems_one_line():
    assert check({"\n": math.inf, "a\rb": 1}) == ["'\\n' = inf is not a finite number",
                                                    "unknown key '\\n' at the top level (known: local, cloud, [hub], "
                                                    "[sumehr], [panel], [practice], [app])",
                                                    "unknown key 'a\\rb' at the top level (known: local, cloud, [hub], "
                                                    "[sumehr], [panel], [practice], [app])"]


@pytest.mark.parametrize("text, expected", [
    ("local = 5\n", ["local must be a non-empty string", "it is an integer"]),
    ('cloud = ["a"]\n', ["cloud must be a non-empty string", "it is an array"]),
    ('local = "dbname=x"\nhub = "http://hub"\n', ["hub must be a table"]),
    ('lcoal = "dbname=x"\n', ["unknown key 'lcoal' at the top level"]),
    ("[hub]\nconnect_timeout = nan\n", ["[hub] connect_timeout = nan is not a finite number"]),
    ("[sumehr]\nretry_max_seconds = -inf\n", ["[sumehr] retry_max_seconds = -inf is not a finite number"]),
    ('[panel]\nsecret_key = "x"\nsecret_fiel = "y"\n', ["unknown key 'secret_fiel' in [panel]"]),
    ('[app]\ncloud = 5\n', ["[app] cloud must be a non-empty string", "application", "it is an integer"]),
    ('[app]\nlocal = " "\n', ["[app] local must be a non-empty string"]),
    ('[app]\napp_dsn = "dbname=x"\n', ["unknown key 'app_dsn' in [app] (known: cloud, local)"]),
    ('app = "dbname=x"\n', ["app must be a table"]),
])
def test_a_bad_file_is_refused_with_its_problems_named(tmp_path, text, expected):
    path = tmp_path / "ccsync.toml"
    path.write_text(text)
    with pytest.raises(CcsyncError) as refused:
        load_file(path)
    message = str(refused.value)
    assert message.startswith(f"{path} has 1 problem(s):")
    for part in expected:
        assert part in message


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "ccsync.toml"
    path.write_text('local = 5\nextra = 1\n[hub]\nread_timeout = inf\n[panel]\nsecret_key = 7\n')
    with pytest.raises(CcsyncError) as refused:
        load_file(path)
    lines = str(refused.value).splitlines()
    assert lines[0].endswith("has 4 problem(s):") and len(lines) == 5


@pytest.mark.parametrize("command", [["status"], ["sumehr", "publish"], ["panel"], ["sync"]])
def test_the_cli_says_what_is_wrong_without_a_traceback(tmp_path, command):
    path = tmp_path / "ccsync.toml"
    path.write_text('local = 5\n[hub]\nconnect_timeout = nan\n')
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", *command], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "CCSYNC_CONFIG": str(path)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr
    assert "local must be a non-empty string" in proc.stderr and "connect_timeout = nan" in proc.stderr


def test_a_named_file_that_does_not_exist_is_an_error_a_missing_default_is_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CCSYNC_CONFIG", raising=False)
    assert load_file() == {}
    monkeypatch.setenv("CCSYNC_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(CcsyncError, match="missing.toml does not exist: check \\$CCSYNC_CONFIG"):
        load_file()


@pytest.mark.parametrize("dsn", [
    "host=cloud dbname=practice user=pc password=hunter2",
    "host=cloud PASSWORD = 'x y'",
    "postgresql://pc:hunter2@cloud/practice",
    "postgres://pc:hunter2@cloud:5432/practice?sslmode=verify-full",
])
def test_a_password_in_a_dsn_is_found(dsn):
    assert secrets_in({"cloud": dsn}) == ["a password in cloud"]
    assert secrets_in({"app": {"local": dsn, "cloud": dsn}}) == ["a password in [app] cloud", "a password in [app] local"]


def test_the_applications_dsns_come_from_app_or_the_environment_and_stay_apart_from_ccsyncs(tmp_path, monkeypatch):
    path = tmp_path / "ccsync.toml"
    path.write_text('local = "dbname=pc"\ncloud = "host=cloud user=pc1"\n'
                    '[app]\ncloud = "host=cloud user=app"\nlocal = "dbname=pc user=app"\n')
    for name in ("CCSYNC_LOCAL_DSN", "CCSYNC_CLOUD_DSN", "CCSYNC_APP_LOCAL_DSN", "CCSYNC_APP_CLOUD_DSN"):
        monkeypatch.delenv(name, raising=False)
    s = config.resolve(config_path=path)
    assert (s.cloud, s.app_cloud, s.local, s.app_local) == \
        ("host=cloud user=pc1", "host=cloud user=app", "dbname=pc", "dbname=pc user=app")
    assert "app" not in s.extra  # no other reader gets them (the panel shows no DSN)
    assert s.need_app("cloud") == "host=cloud user=app"
    monkeypatch.setenv("CCSYNC_APP_CLOUD_DSN", "host=cloud user=app2")
    assert config.resolve(config_path=path).need_app("cloud") == "host=cloud user=app2"
    with pytest.raises(CcsyncError, match=r"no database for the application on this PC: add local = .* under "
                                          r"\[app\] .*CCSYNC_APP_LOCAL_DSN.* not this PC's"):
        config.Settings(local="dbname=pc", cloud="host=cloud").need_app("local")


@pytest.mark.parametrize("dsn", ["host=cloud dbname=practice user=pc passfile=/etc/ccsync/pgpass",
                                 "postgresql://pc@cloud/practice", "postgresql://cloud:5432/practice"])
def test_a_dsn_without_a_password_is_not_a_secret(dsn):
    assert secrets_in({"cloud": dsn}) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions; on Windows the file's ACL decides")
def test_a_secret_readable_by_others_is_warned_about(tmp_path, caplog):
    path = tmp_path / "ccsync.toml"
    path.write_text('cloud = "postgresql://pc:hunter2@cloud/practice"\n[panel]\nsecret_key = "s" \n')
    caplog.set_level(logging.WARNING, logger="ccsync.config")
    for mode, warned in ((0o644, True), (0o604, True), (0o640, False), (0o600, False)):
        caplog.clear()
        path.chmod(mode)
        load_file(path)
        assert ("chmod o-rwx" in caplog.text) == warned, oct(mode)
        assert ("holds a password in cloud and the panel's secret_key" in caplog.text) == warned
        assert "hunter2" not in caplog.text
    path.write_text('cloud = "host=cloud user=pc"\n')
    path.chmod(0o644)
    caplog.clear()
    load_file(path)
    assert caplog.text == ""  # nothing secret in it: nothing to say
