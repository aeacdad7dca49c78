"""The deployment files, checked without Docker (no registry for base
images here, no ``docker compose config``, no hadolint): ``compose.yaml``
against the official compose-spec JSON schema and against the program it
runs, the ``Dockerfile`` by its instructions and its health check run
against a real server, and ``docs/DEPLOYMENT.md`` quoting
``deploy/nginx/tidings.conf`` exactly."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import typer.main
import yaml

from support import ServerProcess, free_port
from tidings.cli.main import app
from tidings.config import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx" / "tidings.conf"
SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"
TIDINGS_IMAGE = "tidings:latest"
SERVERS = ("tidings-a", "tidings-b")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def tidings_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == TIDINGS_IMAGE
    }


def interpolated(value: str) -> str:
    """Compose's ``${VAR:-default}`` as its default, ``${VAR:?error}`` as a
    value the user must give (a placeholder here)."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{\w+:\?[^}]*\}", "given-by-the-operator-0123456789abcdef", value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


# -- compose.yaml ----------------------------------------------------------------


def test_compose_file_is_valid_per_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_check_catches_a_broken_file() -> None:
    """The check is not vacuous: a misspelt key and a bad condition fail it."""
    broken = compose()
    broken["services"]["migrate"]["depends_on"]["db"]["condition"] = "service_ready"
    broken["services"]["worker"]["comand"] = ["worker"]
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_tidings_service_runs_a_real_sub_command() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    entrypoint = json.loads(dict(dockerfile_instructions())["ENTRYPOINT"])
    default = json.loads(dict(dockerfile_instructions())["CMD"])
    assert entrypoint == ["tidings"]
    ran = {}
    for name, service in tidings_services().items():
        command = service.get("command", default)
        assert command[0] in commands, (name, command)
        ran[name] = command[0]
    assert ran == {
        "migrate": "migrate",
        "tidings-a": "serve",
        "tidings-b": "serve",
        "worker": "worker",
    }


def test_every_tidings_variable_is_a_real_setting_with_a_valid_value() -> None:
    for name, service in tidings_services().items():
        env = {key: interpolated(str(value)) for key, value in service["environment"].items()}
        for key in env:
            assert key.startswith(ENV_PREFIX), (name, key)
            assert key.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, (name, key)
        settings = load_settings(env=env)  # raises on a value of the wrong kind
        assert settings.database_url.startswith("postgresql://tidings:tidings@db:5432/")
        assert settings.run_jobs is (name == "worker"), name
        assert settings.auto_migrate is False


def test_start_up_order_migrate_once_then_the_processes() -> None:
    services = compose()["services"]
    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in (*SERVERS, "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name
    assert services["worker"]["healthcheck"] == {"disable": True}  # no HTTP port to ask
    assert services["nginx"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in SERVERS
    }


def test_nginx_mounts_the_shipped_file_and_its_upstream_names_both_servers() -> None:
    nginx = compose()["services"]["nginx"]
    source, target, _mode = nginx["volumes"][0].split(":")
    assert (ROOT / source).resolve() == NGINX_CONF
    assert target.startswith("/etc/nginx/conf.d/")
    upstream = re.search(r"upstream tidings \{(.*?)\}", NGINX_CONF.read_text(), re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream.group(1), re.M)
    services = compose()["services"]
    assert [host for host, _ in servers] == list(SERVERS)
    for host, port in servers:
        assert services[host]["environment"]["TIDINGS_PORT"] == port
    listen = re.search(r"^\s*listen\s+(\d+);", NGINX_CONF.read_text(), re.M)
    assert listen is not None
    assert nginx["ports"] == [f"{listen.group(1)}:{listen.group(1)}"]


# -- docs/DEPLOYMENT.md ------------------------------------------------------------


def test_the_deployment_doc_quotes_the_nginx_file_exactly() -> None:
    doc = (ROOT / "docs" / "DEPLOYMENT.md").read_text()
    section = doc[doc.index("### Behind nginx") :]
    block = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert block is not None, "no nginx block under 'Behind nginx'"
    assert block.group(1) == NGINX_CONF.read_text()


# -- Dockerfile --------------------------------------------------------------------


def test_dockerfile_builds_a_wheel_and_runs_it_as_a_non_root_user() -> None:
    steps = dockerfile_instructions()
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert [f.split(" AS ")[-1] for f in froms] == ["build", "runtime"]
    base = next(args for keyword, args in steps if keyword == "ARG")
    image = base.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", image), image  # a pinned slim tag
    runtime = steps[steps.index(("FROM", froms[1])) :]
    assert ("COPY", "--from=build /dist/ /tmp/dist/") in runtime
    assert any(k == "RUN" and "pip install /tmp/dist/*.whl" in a for k, a in runtime)
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert steps[-2:] == [("ENTRYPOINT", '["tidings"]'), ("CMD", '["serve"]')]


def test_dockerfile_environment_is_real_settings() -> None:
    env_line = next(args for keyword, args in dockerfile_instructions() if keyword == "ENV")
    pairs = dict(item.split("=", 1) for item in shlex.split(env_line))
    tidings = {k: v for k, v in pairs.items() if k.startswith(ENV_PREFIX)}
    settings = load_settings(env=tidings)
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert settings.database_url == "sqlite:////data/tidings.db"


def healthcheck_command() -> list[str]:
    args = next(a for keyword, a in dockerfile_instructions() if keyword == "HEALTHCHECK")
    assert "--interval=" in args
    return json.loads(args[args.index("CMD ") + len("CMD ") :])  # type: ignore[no-any-return]


def test_dockerfile_health_check_asks_readyz_of_a_real_server(tmp_path: Path) -> None:
    command = healthcheck_command()
    assert command[0] == "python" and "/readyz" in command[-1]
    run = [sys.executable, *command[1:]]
    server = ServerProcess(f"sqlite:///{tmp_path / 'tidings.db'}")
    server.start(tmp_path / "server.log")
    try:
        ok = subprocess.run(run, env={"TIDINGS_PORT": str(server.port)}, timeout=30)
        assert ok.returncode == 0
    finally:
        server.stop()
    down = subprocess.run(
        run, env={"TIDINGS_PORT": str(free_port())}, capture_output=True, timeout=30
    )
    assert down.returncode != 0
    assert b"Connection refused" in down.stderr


def test_the_build_context_is_only_what_the_wheel_needs() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        part.rstrip("/")
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and not args.startswith("--from")
        for part in args.split()[:-1]
    }
    assert copied == allowed == {"pyproject.toml", "README.md", "src"}
