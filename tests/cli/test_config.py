"""Settings: the sources and their order, validation that names the source,
secrets kept out of reprs and messages, and a ``tidings serve`` flag for
every setting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import free_port
from tidings.config import MASK, Settings, load_settings, mask_url
from tidings.errors import InvalidInput

# DESIGN §4 "Configuration": each setting it names and the flag users type.
DESIGN_FLAGS = {
    "database_url": "--database",
    "jwt_secret": "--jwt-secret",
    "jwks_url": "--jwks-url",
    "admin_key": "--admin-key",
    "host": "--host",
    "port": "--port",
    "smtp_url": "--smtp-url",
    "publish_rate": "--publish-rate",
    "allow_private_webhooks": "--allow-private-webhooks",
}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tidings.toml"
    path.write_text(text)
    return str(path)


def refused(**kwargs: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_settings(**kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = write(tmp_path, '[tidings]\nport = 9001\nhost = "0.0.0.0"\nlog-level = "debug"\n')
    env = {"TIDINGS_PORT": "9002", "TIDINGS_LOG_LEVEL": "warning"}
    settings = load_settings(config_file=config, env=env, log_level="error", host=None)
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 9002, "error")
    assert settings.heartbeat_s == Settings().heartbeat_s  # untouched: the default


def test_the_config_file_may_come_from_the_environment(tmp_path: Path) -> None:
    config = write(tmp_path, "port = 9003\n")  # a top-level table works as well
    assert load_settings(env={"TIDINGS_CONFIG": config}).port == 9003


def test_environment_strings_become_typed_values() -> None:
    env = {
        "TIDINGS_PLUGINS": "a, b,,c",
        "TIDINGS_RUN_JOBS": "no",
        "TIDINGS_LOG_JSON": "",
        "TIDINGS_HEARTBEAT_S": "0.5",
        "TIDINGS_MAX_REPLAY": "7",
        "TIDINGS_JWT_SECRET": "s",
    }
    settings = load_settings(env=env)
    assert settings.plugins == ("a", "b", "c")
    assert settings.run_jobs is False and settings.log_json is False
    assert settings.heartbeat_s == 0.5 and settings.max_replay == 7
    assert settings.jwt_secret == "s"  # callers get the plain value


def test_settings_alone_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_PORT", "9999")
    assert Settings().port == 8000
    assert load_settings().port == 9999


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("port = true", "port"),
        ("[tidings]\nheartbeat_s = [1]", "heartbeat_s"),
        ('plugins = "a"\nmax_batch = "many"', "max_batch"),
        ("log_json = 3", "log_json"),
        ("database_url = 5", "database_url"),
        ("port = 70000", "port"),
        ('sqlite_synchronous = "FULL; DROP TABLE events"', "sqlite_synchronous"),
        ('log_level = "loud"', "log_level"),
    ],
)
def test_a_wrong_value_in_the_file_is_refused(tmp_path: Path, text: str, setting: str) -> None:
    config = write(tmp_path, text)
    message = refused(config_file=config, env={})
    assert message.startswith(f"setting {setting} from {config}: cannot use ")


def test_a_wrong_value_in_the_environment_names_the_variable() -> None:
    message = refused(env={"TIDINGS_PORT": "abc"})
    assert message.startswith("setting port from TIDINGS_PORT: cannot use 'abc': ")


def test_a_wrong_override_names_its_flag() -> None:
    assert refused(env={}, max_replay="lots").startswith("setting max_replay from --max-replay")


def test_unknown_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    assert "unknown setting 'colour'" in refused(config_file=write(tmp_path, "colour = 1"))
    assert "cannot read config file" in refused(config_file=write(tmp_path, "port = "))
    assert "cannot read config file" in refused(config_file=str(tmp_path / "missing.toml"))


def test_secrets_are_masked_in_reprs_and_messages(tmp_path: Path) -> None:
    settings = Settings(
        admin_key="admin-secret",
        jwt_secret="jwt-secret",
        metrics_token="metrics-secret",
        session_secret="session-secret",
        database_url="postgresql://tidings:db-secret@db:5432/tidings",
        smtp_url="smtp://mailer:smtp-secret@mail:587?starttls=true",
    )
    for shown in (repr(settings), str(settings), f"{settings!r}"):
        assert "secret" not in shown.replace("jwt_secret", "").replace("session_secret", "")
        assert "postgresql://tidings:" + MASK + "@db:5432/tidings" in shown
    assert settings.admin_key == "admin-secret"
    assert settings.database_url.endswith(":db-secret@db:5432/tidings")
    message = refused(config_file=write(tmp_path, 'admin_key = ["admin-secret"]'))
    assert "admin-secret" not in message and MASK in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///./tidings.db", "sqlite:///./tidings.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p@h/db", f"postgresql://u:{MASK}@h/db"),
        ("smtp://u:p:q@h:25?from=a@b", f"smtp://u:{MASK}@h:25?from=a@b"),
    ],
)
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_replace_validates_like_construction() -> None:
    assert Settings().replace(port=1).port == 1
    with pytest.raises(ValueError):
        Settings().replace(port=True)


def tidings(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250", **env},
    )


def test_serve_has_a_flag_for_every_setting() -> None:
    shown = tidings("serve", "--help")
    assert shown.returncode == 0, shown.stderr
    for name, flag in DESIGN_FLAGS.items():
        assert f"{flag} " in shown.stdout or f"{flag}," in shown.stdout, name
    for name in Settings.model_fields:
        assert f"TIDINGS_{name.upper()}" in shown.stdout, name
    assert "--no-allow-private-webhooks" in shown.stdout and "--log-text" in shown.stdout


@pytest.mark.parametrize(
    ("args", "env", "start"),
    [
        ((), {"TIDINGS_PORT": "abc"}, "tidings: setting port from TIDINGS_PORT: "),
        (("--port", "70000"), {}, "tidings: setting port from --port: "),
        (("--sqlite-synchronous", "x"), {}, "tidings: setting sqlite_synchronous from --sqlite-"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(
    args: tuple[str, ...], env: dict[str, str], start: str
) -> None:
    done = tidings("serve", *args, **env)
    assert done.returncode == 2
    assert done.stderr.startswith(start) and done.stderr.count("\n") == 1, done.stderr


def test_serve_takes_its_settings_from_flags(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    flags = [
        *("--database", f"sqlite:///{tmp_path / 'flags.db'}", "--port", str(port)),
        *("--metrics-token", "flag-token", "--log-level", "warning", "--no-run-jobs"),
    ]
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve", *flags], env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(1200):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        assert httpx.get(f"{url}/metrics").status_code == 401
        authorized = {"Authorization": "Bearer flag-token"}
        assert httpx.get(f"{url}/metrics", headers=authorized).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
