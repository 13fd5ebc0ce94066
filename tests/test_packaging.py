"""The built wheel carries everything `ccsync install` needs (the SQL files, the migrations)."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_in_a_fresh_venv_and_ccsync_install_works(tmp_path, default_pg):
    dsn = default_pg.create_database("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("ccsync-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # the dependencies come from this environment (no network); ccsync itself only from the wheel
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    where = subprocess.check_output([str(py), "-c", "import reconciler, ccsync_sql; print(reconciler.__file__)"],
                                    text=True, cwd=tmp_path).strip()
    assert str(site) in where  # the wheel's copy, not the checkout
    result = subprocess.run([str(env_dir / "bin" / "ccsync"), "install", "--dsn", dsn, "--name", "pc-wheel"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select name from ccsync.identity").fetchone()[0] == "pc-wheel"
