"""docker-compose.yml and the Dockerfile checked against the real CLI and settings (Docker is not needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from newswatch.cli import build_parser
from newswatch.settings import ENVIRONMENT, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
NEWSWATCH_SERVICES = ("producer", "worker", "delivery")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return document


def seconds(duration: str) -> float:
    """A compose duration ("150s", "2m30s", "1h") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(number) * scale[unit] for number, unit in parts)


def expand(value: str) -> str:
    """${VAR:?message}, ${VAR:-default} and ${VAR} with a sample value, as compose would with VAR set."""
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: f"sample-{m.group(1).lower()}", value)


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", *NEWSWATCH_SERVICES}


def test_redis_is_private_durable_and_password_protected(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "ports" not in redis, "Redis must not publish a port: whoever writes to it runs code in workers"
    assert "--appendonly yes" in command
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert "ping" in " ".join(redis["healthcheck"]["test"])
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


@pytest.mark.parametrize("service", NEWSWATCH_SERVICES)
def test_commands_parse_with_the_real_cli(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    args = build_parser().parse_args(command)  # the image's ENTRYPOINT is `newswatch`
    assert callable(args.handler)
    assert "ports" not in compose["services"][service]


def test_workers_one_queue_each_and_scalable(compose: dict[str, Any]) -> None:
    parser = build_parser()
    queues = {
        name: parser.parse_args(compose["services"][name]["command"]).queue for name in ("worker", "delivery")
    }
    assert queues == {"worker": "articles", "delivery": "deliveries"}
    for name in ("worker", "delivery"):
        assert "container_name" not in compose["services"][name], "a fixed name prevents --scale"


@pytest.mark.parametrize("service", NEWSWATCH_SERVICES)
def test_environment_is_known_to_settings(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    unknown = set(environment) - set(ENVIRONMENT)
    assert not unknown, f"{service}: variables Settings does not read: {unknown}"
    settings = load_settings(
        {name: expand(value) for name, value in environment.items()}, Path("/nonexistent")
    )
    assert settings.redis_url == "redis://:sample-redis_password@redis:6379/0"
    assert str(settings.watchlist) == "/config/watchlist.toml"


@pytest.mark.parametrize("service", ("worker", "delivery"))
def test_stop_grace_period_above_job_timeout(compose: dict[str, Any], service: str) -> None:
    definition = compose["services"][service]
    timeout = int(definition["environment"].get("NEWSWATCH_JOB_TIMEOUT", Settings.job_timeout))
    assert seconds(definition["stop_grace_period"]) > timeout


@pytest.mark.parametrize("service", NEWSWATCH_SERVICES)
def test_waits_for_healthy_redis(compose: dict[str, Any], service: str) -> None:
    assert compose["services"][service]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for service in NEWSWATCH_SERVICES:
        for volume in compose["services"][service].get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repository"
    assert (ROOT / "seeds").is_dir() and (ROOT / "watchlist.toml").is_file()


def test_dockerfile_runs_the_cli_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["newswatch"]' in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for source in line.split():
            if source != "README.md":  # written by the project's README task; required by pyproject
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
