"""`ccsync demo`: the whole system on two embedded PostgreSQL servers, with a scenario to watch in the panel.

A practice's cloud and one PC (pc-reception), their data under .ccsync-demo/ (kept for the next run;
--reset starts over), a realistic sample practice, the HUB simulator, `ccsync run` and the panel. The PC
reaches the cloud through a "cable" (a TCP forwarder) the scenario unplugs and plugs back. Every run plays
the scenario afresh on the data the previous runs left (other patients, new values), paced for a person:
it waits for Enter at a terminal, else `pace` seconds between the states.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from .. import db, panel_users
from ..errors import CcsyncError
from ..schema import HEAD
from ..sumehr import kmehr
from . import hubsim
from .cable import Cable
from .pgserver import SERVER_ROOT, SERVICE_USER, PgServer, free_port

NODE = "pc-reception"
APP_ROLE = "practice_app"  # the practice application's own login, on the cloud and the PC
TABLES = ["patients", "contacts", "encounters", "sumehr_documents"]
PANEL_USER, PANEL_PASSWORD = "demo", "ccsync-demo"
OFFLINE_ENCOUNTERS = 2000  # the reception's work while offline: the backlog the PC pushes when it is back
SLOW_LINE = 48_000  # bytes per second on the cable while the PC catches up, so that "synchronizing" can be seen
FIRST_OFFLINE_ID = 90_000_000  # encounters written by the scenario get ids above this
# how the panel and the CLI name a row of each table (`ccsync label`): the patient, whatever the table
PATIENT = "(select p.last_name || ' ' || p.first_name || ' (' || to_char(p.birth_date, 'DD/MM/YYYY') || ')' " \
          "from public.patients p where p.id = patient_id)"
LABELS = {
    "patients": "last_name || ' ' || first_name || ' (' || to_char(birth_date, 'DD/MM/YYYY') || ')'",
    "contacts": PATIENT + " || ' · ' || kind",
    "encounters": PATIENT + " || ' · ' || to_char(at, 'DD/MM/YYYY')",
    "sumehr_documents": PATIENT + " || ' · Sumehr v' || version",
}

SCHEMA = """
create table patients (
    id          bigint primary key,
    inss        text not null,
    first_name  text not null,
    last_name   text not null,
    birth_date  date not null,
    sex         text not null check (sex in ('male', 'female', 'unknown')),
    phone       text,
    email       text,
    address     text,
    hub_consent boolean not null default false,   -- privacy setting: keep my Sumehr current on the HUB
    updated_at  timestamptz not null default now()
);
create table contacts (
    id         bigint primary key,
    patient_id bigint not null references patients (id),
    kind       text not null,
    value      text not null
);
create table encounters (
    id         bigint primary key,
    patient_id bigint not null references patients (id),
    at         timestamptz not null,
    reason     text not null,
    notes      text,
    doctor     text not null
);
create table sumehr_documents (
    patient_id bigint not null references patients (id),
    version    integer not null,
    kmehr      text not null,
    created_at timestamptz not null default now(),
    primary key (patient_id, version)
);
create index on encounters (patient_id);
create index on contacts (patient_id);
"""

FIRST = ["Emma", "Louis", "Olivia", "Arthur", "Louise", "Jules", "Mila", "Adam", "Alice", "Noah", "Lina",
         "Victor", "Elise", "Lucas", "Zoë", "Mathis", "Camille", "Liam", "Chloé", "Finn", "Anaïs", "Wout"]
LAST = ["Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters",
        "De Smet", "Dubois", "Lambert", "Dupont", "Martin", "Lemaire", "Van den Broeck", "D'Hondt", "Vermeulen"]
REASONS = ["check-up", "flu", "vaccination", "blood pressure", "back pain", "diabetes follow-up", "allergy",
           "certificate", "sprained ankle", "prescription renewal"]
DOCTORS = ["Dr Peeters", "Dr Dubois", "Dr Claes"]


@dataclass
class Demo:
    base: Path
    cloud: PgServer
    pc: PgServer

    @property
    def cloud_dsn(self) -> str:
        return self.cloud.dsn("practice")

    @property
    def pc_dsn(self) -> str:
        return self.pc.dsn("practice")


def say(text: str) -> None:
    print(f"ccsync demo: {text}", file=sys.stderr, flush=True)


def inss_of(i: int) -> str:
    base = f"{i:09d}"
    return base + f"{97 - int(base) % 97:02d}"


def _servers(base: Path, reset: bool) -> Demo:
    if reset and base.exists():
        for server_dir in ("cloud", NODE):
            if (base / server_dir).exists():
                PgServer(base / server_dir).destroy()
        shutil.rmtree(base)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    cloud = PgServer(base / "cloud").init().start()
    pc = PgServer(base / NODE).init().start()
    if cloud.user is not None:
        added = "added it to this machine" if cloud.user_created or pc.user_created else "it was already on this machine"
        say(f"running as root, which PostgreSQL refuses: its servers run as the system user {SERVICE_USER} "
            f"({added}), their data in {SERVER_ROOT}/clusters, linked from {base}")
    return Demo(base, cloud, pc)


def _has_database(server: PgServer, name: str) -> bool:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None


def _sample_practice(dsn: str, patients: int, rng: random.Random) -> dict:
    """A practice of `patients` patients with contacts, encounters and Sumehrs (10% consent to the HUB)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(SCHEMA)
        with conn.cursor().copy("copy patients (id, inss, first_name, last_name, birth_date, sex, phone, email, "
                                "address, hub_consent) from stdin") as copy:
            for i in range(1, patients + 1):
                first, last = rng.choice(FIRST), rng.choice(LAST)
                copy.write_row((i, inss_of(i), first, last, date(1940, 1, 1) + timedelta(days=rng.randint(0, 29000)),
                                rng.choice(["male", "female"]), f"+32 4{rng.randint(10_000_000, 99_999_999)}",
                                f"{first}.{last}@example.be".lower().replace(" ", "").replace("'", ""),
                                f"{rng.randint(1, 200)} Rue de la Loi, 1000 Brussels", i % 10 == 0))
        conn.execute(
            "insert into contacts select g, 1 + (g - 1) %% %(n)s, case g %% 3 when 0 then 'emergency' "
            "when 1 then 'pharmacy' else 'specialist' end, '+32 2 ' || (1000000 + g) "
            "from generate_series(1, %(c)s) g",
            {"n": patients, "c": patients * 2},
        )
        conn.execute(
            "insert into encounters select g, 1 + (g * 7919) %% %(n)s, now() - (g %% 3650) * interval '1 day', "
            "(%(reasons)s::text[])[1 + g %% %(r)s], null, (%(docs)s::text[])[1 + g %% 3] "
            "from generate_series(1, %(e)s) g",
            {"n": patients, "e": patients * 7, "reasons": REASONS, "r": len(REASONS), "docs": DOCTORS},
        )
        rows = conn.execute("select id, inss, first_name, last_name, birth_date, sex from patients "
                            "where hub_consent order by id").fetchall()
        with conn.cursor().copy("copy sumehr_documents (patient_id, version, kmehr) from stdin") as copy:
            for pid, inss, first, last, born, sex in rows:
                copy.write_row((pid, 1, kmehr.build_sumehr(inss, first, last, born, sex, 1).decode()))
        counts = {t: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(t))).fetchone()[0]
                  for t in TABLES}
    return counts


def _ccsync(*args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", *args], env=env, **kwargs)


def _label(demo: Demo) -> None:
    """Every table's rows named by their patient (`ccsync label`), on the cloud; what is set already stays."""
    from reconciler import labels

    with psycopg.connect(demo.cloud_dsn, autocommit=True) as conn:
        have = labels.expressions(conn)
    for table, label in LABELS.items():
        if f"public.{table}" not in have:
            labels.set_label(demo.cloud_dsn, table, label)


def _prepare(demo: Demo, patients: int) -> None:
    import reconciler
    from reconciler import sync
    from reconciler.config import Settings
    from reconciler.progress import Bar

    if _has_database(demo.cloud, "practice") and _has_database(demo.pc, "practice"):
        say(f"reusing the practice under {demo.base} (`make demo DEMO_ARGS=--reset` starts over)")
        for dsn, name in ((demo.cloud_dsn, "cloud"), (demo.pc_dsn, NODE)):  # a newer ccsync: the cloud first
            with psycopg.connect(dsn) as conn:
                if db.revision(conn) == HEAD:
                    continue
            done = reconciler.install(dsn, name)
            if done["changed"]:
                say(f"upgraded the {name} database to this ccsync: schema {done['from_revision']} -> "
                    f"{done['to_revision']}")
        _label(demo)  # (a practice made by a ccsync without labels gets them; the PC copies them at its sync)
        return
    for server in (demo.cloud, demo.pc):
        if _has_database(server, "practice"):
            server.drop_database("practice")
        server.create_database("practice")
    say(f"creating a sample practice on the cloud ({patients} patients)...")
    counts = _sample_practice(demo.cloud_dsn, patients, random.Random(42))
    say(", ".join(f"{n} {t}" for t, n in counts.items()) + f" ({sum(counts.values())} rows)")
    reconciler.install(demo.cloud_dsn, "cloud")
    reconciler.track(demo.cloud_dsn, TABLES)
    _label(demo)
    reconciler.install(demo.pc_dsn, NODE)
    say("initial sync of the PC (COPY from one consistent cloud snapshot):")
    result = sync.init(Settings(local=demo.pc_dsn, cloud=demo.cloud_dsn), progress=Bar())  # lines in a log
    own = sum(1 for t in result["copied"] if t.startswith("ccsync."))
    say(f"copied {result['rows']} rows of {result['copied_tables'] - own} tables (and {own} of ccsync's own) "
        f"in {result['seconds']:.1f} s")


def _app_role(demo: Demo) -> None:
    """The practice application's own login (APP_ROLE) on the cloud and the PC, granted the tracked tables."""
    from ..schema.roles import grant

    for server, dsn in ((demo.cloud, demo.cloud_dsn), (demo.pc, demo.pc_dsn)):
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            if conn.execute("select 1 from pg_roles where rolname = %s", (APP_ROLE,)).fetchone() is None:
                conn.execute(sql.SQL("create role {} login").format(sql.Identifier(APP_ROLE)))
        grant(dsn, [APP_ROLE])


def _config_file(demo: Demo, hub_port: int, cloud_port: int) -> Path:
    """The demo's ccsync.toml, readable by its owner only. It holds no secret: the panel keeps its own in the
    user's configuration folder. [app] names the databases as the application reaches them (its own role; the
    cloud through the cable, as this PC reaches it), for `reconciler.service.database_for_app()`."""
    path = demo.base / "ccsync.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# written by `ccsync demo` at each start\n"
                "# the HUB simulator on this machine: plain http:// is accepted for loopback only\n"
                f'[hub]\nendpoint = "http://127.0.0.1:{hub_port}/hubservices/v3"\n'
                '[sumehr]\ninss_column = "inss"   # each Sumehr must be about the INSS of its patient\n'
                "# the practice application's own role (not this PC's): database_for_app() answers one of these\n"
                f'[app]\ncloud = "host=127.0.0.1 port={cloud_port} user={APP_ROLE} dbname=practice"\n'
                f'local = "host=127.0.0.1 port={demo.pc.port} user={APP_ROLE} dbname=practice"\n')
    path.chmod(0o600)
    return path


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (psycopg.Error, OSError):
            pass
        time.sleep(0.2)
    raise CcsyncError(f"the demo timed out waiting for {what}: see the logs under .ccsync-demo/")


def _one(dsn: str, query: str, params=None):
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(query, params).fetchone()[0]


def _mode(dsn: str) -> str:
    return _one(dsn, "select mode from ccsync.state")


def _hub_state(hub_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{hub_port}/control/state", timeout=3) as response:
        return json.load(response)


class Pacer:
    """Waits between the scenario's states: for Enter at a terminal, else a fixed number of seconds."""

    def __init__(self, interactive: bool, seconds: float):
        self.interactive, self.seconds = interactive, seconds

    def next(self, action: str) -> None:
        if self.interactive:
            try:
                input(f"ccsync demo: press Enter to {action} ")
                return
            except EOFError:  # stdin closed: go on at the default pace
                self.interactive = False
        say(f"in {self.seconds:g} s: {action} (--pace sets the wait)")
        time.sleep(self.seconds)


def _psql(server: PgServer) -> str:
    psql = shutil.which("psql") or str(server.bindir / "psql")
    return f'{psql} "{server.dsn("practice")}"'


def run(base: Path | str = ".ccsync-demo", *, reset: bool = False, scenario_only: bool = False,
        patients: int = 10_000, panel_port: int = 8600, hub_port: int = 8650, pace: float | None = None) -> dict:
    """Start everything, play the scenario, and (unless scenario_only) keep serving until Ctrl-C.

    The scenario waits for Enter between its states when stdin is a terminal and no pace is given, else
    `pace` seconds (30 by default, 0.2 with scenario_only). Paced for a person (at a terminal, or 10 s and more),
    the PC works longer offline and the cable comes back as a slow line, so that it is seen synchronizing."""
    base = Path(base).absolute()
    interactive = pace is None and not scenario_only and sys.stdin is not None and sys.stdin.isatty()
    pacer = Pacer(interactive, (0.2 if scenario_only else 30.0) if pace is None else pace)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl-C does: every process, then the servers
    demo = _servers(base, reset)
    procs: list[subprocess.Popen] = []
    cable = stop_hub = None
    result: dict = {}
    try:
        _prepare(demo, patients)
        cable = Cable(demo.cloud.port)
        cloud_via_cable = f"host=127.0.0.1 port={cable.port} user=postgres dbname=practice"
        _app_role(demo)
        env = {**os.environ, "CCSYNC_LOCAL_DSN": demo.pc_dsn, "CCSYNC_CLOUD_DSN": cloud_via_cable,
               "CCSYNC_CONFIG": str(_config_file(demo, hub_port, cable.port))}
        logs = base / "logs"
        logs.mkdir(mode=0o700, exist_ok=True)
        panel_users.add(demo.pc_dsn, PANEL_USER, PANEL_PASSWORD, replace=True)

        def start(name, *args):
            log = open(logs / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
            procs.append(_ccsync(*args, env=env, stdout=log, stderr=subprocess.STDOUT))

        try:
            _url, _state, stop_hub = hubsim.start_in_thread(port=hub_port)
        except OSError as exc:
            raise CcsyncError(f"cannot serve the HUB simulator on port {hub_port} ({exc.strerror}): "
                              "choose another --hub-port") from None
        # the service and the panel run as on a PC: processes of their own, as `ccsync run` and `ccsync panel`
        start("service", "run", "--max-backoff", "0.5" if scenario_only else "2")
        start("panel", "panel", "--port", str(panel_port))
        _wait(lambda: _mode(demo.pc_dsn) == "online", 60, "the service online")
        say(f"panel: http://127.0.0.1:{panel_port}/  (login {PANEL_USER!r}, password {PANEL_PASSWORD!r})")
        say(f"the cloud's database: {demo.cloud_dsn}")
        say(f"the PC's database:    {demo.pc_dsn}  (the PC reaches the cloud through the cable, port {cable.port})")
        say(f"edit the PC's data:   {_psql(demo.pc)}")
        say(f"logs: {logs}; the HUB simulator (in this process) at http://127.0.0.1:{hub_port}/hubservices/v3")
        for_a_person = interactive or pacer.seconds >= 10
        result = _scenario(demo, cable, hub_port, pacer, slow_line=SLOW_LINE if for_a_person else None,
                           offline_work=OFFLINE_ENCOUNTERS if for_a_person else 20)
        if scenario_only:
            return result
        # Ctrl-C stops everything, even when the demo was started from a shell's background job (which starts
        # it with SIGINT ignored, so Python installs no handler of its own)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        say("the demo keeps running: watch the panel, edit data with psql, Ctrl-C stops everything")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return result
    finally:
        say("stopping...")
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if cable is not None:
            cable.close()
        if stop_hub is not None:
            stop_hub()
        demo.pc.stop("fast")
        demo.cloud.stop("fast")
        say(f"stopped; the data stays under {base} for the next run (`make demo DEMO_ARGS=--reset` starts over)")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _watch_modes(pc: str, until: str, timeout: float) -> None:
    """Say each mode the PC's service passes through from now on, until it is in `until`."""
    words = {"online": "online (the light is steady green)", "offline": "offline (the light is grey)",
             "synchronizing": "synchronizing (the light blinks; the panel shows the progress)"}
    deadline, last = time.monotonic() + timeout, _mode(pc)
    if last == until:
        say(f"   the PC is {words.get(last, last)}")
        return
    while time.monotonic() < deadline:
        try:
            mode = _mode(pc)
        except (psycopg.Error, OSError):
            mode = last
        if mode != last:
            say(f"   the PC is {words.get(mode, mode)}")
            last = mode
        if mode == until:
            return
        time.sleep(0.1)
    raise CcsyncError(f"the demo timed out waiting for the PC {until}: see the logs under .ccsync-demo/")


def _scenario(demo: Demo, cable: Cable, hub_port: int, pacer: Pacer, *, slow_line: int | None,
              offline_work: int) -> dict:
    """One play of the story on whatever earlier runs left: a new patient, new values and new ids each time."""
    pc, cloud = demo.pc_dsn, demo.cloud_dsn
    # the PC holds what earlier runs wrote offline even when a run was stopped before its push
    run_no = 1 + _one(pc, "select count(*) from encounters where id > %s and notes = 'seen offline at the reception'",
                      (FIRST_OFFLINE_ID,))
    patient = _one(cloud, "select id from patients where hub_consent order by id offset %s limit 1",
                   ((run_no - 1) % max(1, _one(cloud, "select count(*) from patients where hub_consent")),))
    first_id = max(FIRST_OFFLINE_ID, *(_one(dsn, "select coalesce(max(id), 0) from encounters") for dsn in (pc, cloud))) + 1
    conflicts_before = _one(pc, "select coalesce(max(id), 0) from ccsync.conflicts")
    say(f"scenario (run {run_no} on this data): patient {patient}")
    pacer.next("unplug the cable: the PC goes offline")
    say("scenario 1/4: the cable is unplugged")
    cable.unplug()
    _watch_modes(pc, "offline", 60)
    say("   the application now works on the PC's replica; the panel keeps working too")
    say(f"scenario 2/4: a morning of work while offline: {offline_work} encounters at the reception, one "
        "patient's phone changed on both sides, a Sumehr written on the PC")
    with psycopg.connect(pc, autocommit=True) as conn:
        for i in range(offline_work):  # one transaction each, as the reception's application writes them
            conn.execute("insert into encounters (id, patient_id, at, reason, notes, doctor) "
                         "values (%s, %s, now(), %s, %s, %s)",
                         (first_id + i, 1 + (patient + i) % 100, REASONS[i % len(REASONS)],
                          "seen offline at the reception" if i == 0 else None, DOCTORS[i % 3]))
        with conn.transaction():
            conn.execute("update patients set phone = %s, updated_at = now() where id = %s",
                         (f"+32 470 {run_no:02d} 11 11", patient))
            conn.execute("update patients set email = %s where id = %s", (f"new.address.{run_no}@example.be", patient + 1))
            row = conn.execute("select inss, first_name, last_name, birth_date, sex, "
                               "(select max(version) from sumehr_documents where patient_id = p.id) "
                               "from patients p where id = %s", (patient,)).fetchone()
            *person, latest = row  # inss, first_name, last_name, birth_date, sex; the latest version
            version = (latest or 0) + 1
            conn.execute("insert into sumehr_documents (patient_id, version, kmehr) values (%s, %s, %s)",
                         (patient, version, kmehr.build_sumehr(*person, version).decode()))
    with psycopg.connect(cloud) as conn:
        conn.execute("update patients set phone = %s where id = %s", (f"+32 2 555 {run_no:02d} 55", patient))
        conn.execute("update patients set address = %s where id = %s", (f"{run_no} Meir, 2000 Antwerp", patient + 2))
    say(f"   the Sumehr (version {version}) waits: the panel lists the patient as not up to date on the HUB")
    pacer.next("plug the cable back in: the PC synchronizes, then is online")
    say("scenario 3/4: the cable is back" + (" (a slow line for now)" if slow_line else ""))
    cable.plug(rate=slow_line)
    _watch_modes(pc, "online", 600)
    cable.plug()  # full speed again
    _wait(lambda: _one(pc, "select count(*) from ccsync.conflicts where id > %s and status = 'open'",
                       (conflicts_before,)) >= 1, 60, "the conflict")
    say("scenario 4/4: the conflict is listed with its magnifying glass; the Sumehr goes to the HUB")
    inss = row[0]
    _wait(lambda: (_hub_state(hub_port).get("patients", {}).get(inss) or {}).get("version") == version, 120,
          "the Sumehr on the HUB")
    _wait(lambda: _one(pc, "select count(*) from ccsync.journal") == 0, 60, "the PC's backlog pushed")
    result = {
        "conflicts": _one(pc, "select count(*) from ccsync.conflicts where id > %s and status = 'open'",
                          (conflicts_before,)),
        "conflict_kind": _one(pc, "select kind from ccsync.conflicts where id > %s and status = 'open' "
                                  "order by id limit 1", (conflicts_before,)),
        "hub_version": version, "patient": patient, "run": run_no,
        "converged": _converged(pc, cloud),
    }
    say(f"done: {result['conflicts']} new open conflict ({result['conflict_kind']}), Sumehr version {version} on "
        f"the HUB, PC and cloud {'identical' if result['converged'] else 'DIFFERENT'} on every table")
    return result


def _converged(pc: str, cloud: str) -> bool:
    for table in TABLES:
        query = f"select md5(string_agg(t::text, ',' order by t::text)) from {table} t"  # noqa: S608 - fixed names
        if _one(pc, query) != _one(cloud, query):
            return False
    return True


__all__ = ["run", "free_port"]
