"""Progress of long work where no one watches a terminal (systemd, a log file): a line every few seconds; and
`init` counts the tables it copies as a person counts them."""

import re
import time

import pytest
from click.testing import CliRunner

import cli
from reconciler import progress
from reconciler.progress import Bar

pytestmark = pytest.mark.one_version


def test_without_a_terminal_a_line_every_interval_then_a_last_one(capsys):
    bar = Bar(interval=0.05)  # pytest's stderr is not a terminal
    bar.start("init: 3 table(s)", 100_000, unit="rows")
    for _ in range(4):
        bar.advance(10_000)
        time.sleep(0.06)
    bar.advance(60_000)
    bar.finish()
    lines = capsys.readouterr().err.splitlines()
    assert 3 <= len(lines) <= 5
    assert lines[-1].startswith("init: 3 table(s): 100k/100k rows (100%)")
    assert all(re.fullmatch(r"init: 3 table\(s\): [\d.]+k/100k rows \(\d+%\), .* left", line) for line in lines)


def test_quick_work_writes_nothing_and_silent_stays_silent(capsys):
    for bar in (Bar(interval=60), Bar(enabled=False, interval=0)):
        bar.start("push", 10)
        bar.advance(10)
        bar.finish()
    assert capsys.readouterr().err == ""


def test_init_logs_progress_lines_and_counts_the_tables_a_person_tracked(practice, monkeypatch):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 500) g")
    dsn = p.add_node("pc-2", init=False)
    monkeypatch.setattr(progress, "LINE_INTERVAL", 0.0)  # a line at every step of the copy
    result = CliRunner().invoke(cli.main, ["init", "--local", dsn, "--cloud", p.pcs["pc-2"].cloud],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("init: 2 table(s) and 3 of ccsync's: 0/500 rows (0%)"), lines
    assert all(re.match(r"init: .*: \d+/500 rows \(\d+%\), ", line) for line in lines), lines
    assert "500/500 rows (100%)" in lines[-1]
    assert re.match(r"copied 2 tracked table\(s\) and 3 of ccsync's own, 500 row\(s\) in [\d.]+ s; pc-2 is ready$",
                    result.stdout.strip())
