"""App start on the embedded registry: llmreg side by side with the floor and MLflow.

Run:  python -m bench.bench_startup           (about a minute; MLFLOW_PYTHON=/path/to/python
                                                names MLflow's interpreter, else a
                                                virtualenv is made as bench_server does)

Each process is a fresh interpreter that does what an application does at startup: find
the production bundle, read it and render it once. Measured in one run, interleaved
(one of each in turn, so a change in the machine's load hits them alike):

- llmreg: ``llmreg.connect(home).resolve(name, env="production").render(...)``;
- llmreg through the ORM (``LLMREG_DATABASE_URL`` naming the same file, which sends every
  read to the service): what connect cost before the read-only path;
- the floor: the standard library's ``sqlite3`` (one query), reading the blob file,
  ``json`` and Jinja2's sandbox rendering the same template, nothing else;
- MLflow: ``mlflow.genai.load_prompt("prompts:/…@production").format(...)`` from a local
  SQLite tracking store;
- ``python -c pass``.

Writes the "Embedded app start" section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_server import VARS, mlflow_python, setup_llmreg
from bench.common import ROOT, machine, median, write_section

RUNS = 10
NAME = "ticket-classifier"


def commands(home: Path, digest: str, mpy: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMREG_", "MLFLOW_"))}
    ours = ("import llmreg\n"
            f"reg = llmreg.connect({str(home)!r})\n"
            f"b = reg.resolve({NAME!r}, env='production')\n"
            f"b.render(**{VARS!r}).to_openai()\n")
    blob = home / "blobs" / "sha256" / digest.split(":")[1]
    floor = ("import json, sqlite3\n"
             "from jinja2 import StrictUndefined\n"
             "from jinja2.sandbox import ImmutableSandboxedEnvironment\n"
             f"conn = sqlite3.connect('file:{home / 'registry.db'}?mode=ro', uri=True)\n"
             "(digest,) = conn.execute('SELECT v.digest FROM bundle_names n JOIN slots s ON "
             "s.name_id = n.id JOIN versions v ON v.name_id = n.id AND v.number = s.version "
             f"WHERE n.name = ? AND s.env = ?', ({NAME!r}, 'production')).fetchone()\n"
             f"m = json.loads(open({str(blob)!r}, 'rb').read())\n"
             "e = ImmutableSandboxedEnvironment(undefined=StrictUndefined)\n"
             "[{'role': 'system', 'content': m['system_prompt']}, {'role': 'user', "
             f"'content': e.from_string(m['template']['source']).render(**{VARS!r})}}]\n")
    theirs = ("import mlflow\n"
              f"p = mlflow.genai.load_prompt('prompts:/{NAME}@production')\n"
              f"p.format(**{VARS!r})\n")
    mlflow_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{home.parent / 'mlflow.db'}"}
    orm_env = {**env, "LLMREG_DATABASE_URL": f"sqlite:///{home / 'registry.db'}"}
    return {
        "llmreg": ([sys.executable, "-c", ours], env),
        "llmreg through the ORM": ([sys.executable, "-c", ours], orm_env),
        "floor": ([sys.executable, "-c", floor], env),
        "mlflow": ([mpy, "-c", theirs], mlflow_env),
        "python -c pass": ([sys.executable, "-c", "pass"], env),
    }


def setup_mlflow(py: str, home: Path, text: str) -> None:
    code = ("import mlflow, sys\n"
            f"p = mlflow.genai.register_prompt(name={NAME!r}, template=sys.argv[1])\n"
            f"mlflow.genai.set_prompt_alias({NAME!r}, alias='production', version=p.version)\n")
    subprocess.run([py, "-c", code, text], check=True, capture_output=True,
                   env={**os.environ,
                        "MLFLOW_TRACKING_URI": f"sqlite:///{home.parent / 'mlflow.db'}"})


def main() -> None:
    base = ROOT / "bench" / ".work"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="startup-", dir=base))
    try:
        mpy = mlflow_python(work)
        home = work / "app" / ".llmreg"
        _, body, digest = setup_llmreg(home)
        import json

        manifest = json.loads(body)
        setup_mlflow(mpy, home, (manifest["system_prompt"] + "\n" + manifest["template"][
            "source"]).replace("{{ ", "{{").replace(" }}", "}}"))
        cmds = commands(home, digest, mpy)
        for cmd, env in cmds.values():  # warm the OS file cache; fail early
            subprocess.run(cmd, env=env, check=True, capture_output=True)
        times: dict[str, list[float]] = {label: [] for label in cmds}
        for _ in range(RUNS):
            for label, (cmd, env) in cmds.items():
                start = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                times[label].append((time.perf_counter() - start) * 1000)
        cmd, env = cmds["llmreg"]
        importtime = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env,
                                    capture_output=True, text=True).stderr
        loaded = subprocess.run(
            [cmd[0], "-c", cmd[2] + "import sys; print(sorted({m.split('.')[0] for m in "
             "sys.modules} & {'pydantic', 'sqlalchemy', 'sqlmodel', 'alembic', 'yaml'}))"],
            env=env, capture_output=True, text=True, check=True).stdout.strip()
        load = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ms = {label: median(values) for label, values in times.items()}
    top = sorted((line for line in importtime.splitlines() if "|" in line
                  and line.split("|")[1].strip().isdigit()),
                 key=lambda line: -int(line.split("|")[1]))[:8]
    rows = "\n".join(f"| {label} | {v:.0f} | {min(times[label]):.0f} |"
                     for label, v in ms.items())
    imports = "\n".join(f"    {line.strip()}" for line in top)
    body_md = f"""
Command: `python -m bench.bench_startup`. Machine: {machine()}; shared, load average
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) when the run ended. MLflow
{_mlflow_version(mpy)} from its own virtualenv.

**An app's start on the embedded registry** (median and best of {RUNS} fresh processes,
interleaved; each finds the production bundle of `{NAME}` ({len(body)} bytes canonical),
reads it and renders it once):

| process | median ms | best ms |
|---|---|---|
{rows}

llmreg is **{ms['llmreg'] / ms['floor']:.2f}x the floor** (target: within 1.5x) and
**{ms['mlflow'] / ms['llmreg']:.1f}x faster than MLflow**; before the read-only path (every
read through the ORM, as `llmreg through the ORM` still measures) it was
{ms['llmreg through the ORM'] / ms['floor']:.2f}x the floor. Heavy modules loaded by the
llmreg process: `{loaded}`. The read goes through the standard library's `sqlite3`
(read-only), the blob file is verified against its digest, and the manifest dict is
rendered; SQLAlchemy, SQLModel and pydantic load only when the app writes or asks for
something the read-only path does not answer. Largest imports (`python -X importtime`,
cumulative µs):

{imports}
"""
    write_section("Embedded app start", body_md)
    print(body_md)


def _mlflow_version(py: str) -> str:
    return subprocess.run([py, "-c", "import mlflow; print(mlflow.__version__)"],
                          capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
