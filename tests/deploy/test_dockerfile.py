"""The Dockerfile, read the way a reviewer reads it (no Docker engine here), and its two Python snippets run for real.

The snippets are the dependency list the image installs and the HEALTHCHECK command: both are run here as the image
would run them, against this repo's pyproject.toml and against a real server answering `/healthz`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.servers import RunningServer, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # 0 for the first FROM's stage, counting up


def parse_dockerfile(text: str) -> list[Instruction]:
    """Return the instructions, with `\\` continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), args.strip(), stage))
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(instructions: list[Instruction]) -> list[Instruction]:
    """The final stage: what the image is made of."""
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(instruction.args))
    return env


def test_every_stage_is_slim_python_3_11(instructions: list[Instruction]) -> None:
    bases = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert bases and all(base.startswith("python:3.11-slim") for base in bases), bases


def test_the_image_runs_as_a_non_root_user_created_in_it(runtime: list[Instruction]) -> None:
    users = [i for i in runtime if i.keyword == "USER"]
    assert users, "no USER: the bot would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    created = " ".join(i.args for i in runtime if i.keyword == "RUN")
    assert "useradd" in created and (f"--uid {user} " if user.isdigit() else f" {user}") in created
    # Nothing after USER may need root (a RUN apt-get there would fail the build).
    after_user = runtime[runtime.index(users[-1]) :]
    assert not any(i.keyword == "RUN" for i in after_user)


def test_dependencies_are_a_layer_of_their_own_before_the_source(runtime: list[Instruction]) -> None:
    copies = [i for i in runtime if i.keyword == "COPY"]
    runs = [i for i in runtime if i.keyword == "RUN"]
    manifest = next(i for i in copies if "pyproject.toml" in i.args)
    install_deps = next(i for i in runs if "pip install -r" in i.args)
    code = next(i for i in copies if "--from=" in i.args or any(p in i.args.split() for p in ("bot", "./bot", ".")))
    install_code = next(i for i in runs if ".whl" in i.args)
    order = [runtime.index(i) for i in (manifest, install_deps, code, install_code)]
    assert order == sorted(order), "pyproject.toml, deps install, source copy, source install must come in that order"
    assert "--no-deps" in install_code.args  # the source layer must not reinstall (or upgrade) the dependencies
    # The dependencies layer sees pyproject.toml only, so editing code does not invalidate it.
    assert all(i.args.split()[0].endswith("pyproject.toml") for i in copies if runtime.index(i) < order[1])


def test_the_dependency_snippet_lists_exactly_the_projects_dependencies(
    runtime: list[Instruction], tmp_path: Path
) -> None:
    install_deps = next(i for i in runtime if i.keyword == "RUN" and "pip install -r" in i.args)
    words = shlex.split(install_deps.args)
    program = words[words.index("-c") + 1]
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    program = program.replace("/tmp/pyproject.toml", str(tmp_path / "pyproject.toml"))
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.splitlines() == PYPROJECT["project"]["dependencies"]


def test_the_wheel_stage_copies_what_the_wheel_is_built_from(instructions: list[Instruction]) -> None:
    build = [i for i in instructions if i.stage == 0]
    copied = {Path(word).name for i in build if i.keyword == "COPY" for word in i.args.split()[:-1]}
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert {*packages, "pyproject.toml", PYPROJECT["project"]["readme"]} <= copied
    assert any(i.keyword == "RUN" and "wheel" in i.args for i in build)


def test_the_command_is_stagebot_serve_on_port(runtime: list[Instruction]) -> None:
    command = json.loads(only(runtime, "CMD").args)  # exec form: stagebot is PID 1's child and gets SIGTERM
    entrypoint = json.loads(only(runtime, "ENTRYPOINT").args)
    assert command[:2] == ["stagebot", "serve"] and "--socket" not in command
    assert "--port" not in command  # `stagebot serve` reads $PORT, which Cloud Run sets
    assert entrypoint[0] == "tini"
    env = env_of(runtime)
    assert env["PORT"] == str(only(runtime, "EXPOSE").args)


def test_environment_unbuffered_and_store_on_a_volume(runtime: list[Instruction]) -> None:
    env = env_of(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    volumes = json.loads(only(runtime, "VOLUME").args)
    assert env["STAGEBOT_HOME"] in volumes


def test_the_healthcheck_asks_healthz_with_urllib(runtime: list[Instruction]) -> None:
    check = only(runtime, "HEALTHCHECK").args
    assert "/healthz" in check and "urllib" in check
    assert "curl" not in check and "wget" not in check  # neither is in a slim image


@pytest.fixture
def healthz() -> Iterator[tuple[RunningServer, dict[str, bool]]]:
    """Serve `/healthz` answering 200, or 503 once the test sets `state["ok"] = False`."""
    state = {"ok": True}

    async def answer(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok" if state["ok"] else "degraded"}, status_code=200 if state["ok"] else 503)

    with serve_in_thread(Starlette(routes=[Route("/healthz", answer)])) as server:
        yield server, state


def run_healthcheck(runtime: list[Instruction], port: int) -> int:
    check = only(runtime, "HEALTHCHECK").args
    command = json.loads(check[check.index("CMD") + len("CMD") :].strip())
    assert command[0] == "python"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {"PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


def test_the_healthcheck_passes_on_200_and_fails_on_503_and_on_no_server(
    runtime: list[Instruction], healthz: tuple[RunningServer, dict[str, bool]]
) -> None:
    server, state = healthz
    assert run_healthcheck(runtime, server.port) == 0
    state["ok"] = False
    assert run_healthcheck(runtime, server.port) != 0
    assert run_healthcheck(runtime, 9) != 0  # nothing listens on the discard port


def test_dockerignore_keeps_the_context_small_and_the_build_inputs_in() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines() if line.strip()
    }
    assert {".git", ".venv"} <= ignored
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert not ignored & {*packages, "pyproject.toml", "README.md"}
