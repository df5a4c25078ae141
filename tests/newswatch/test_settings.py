"""Settings: environment first, then newswatch.toml, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from newswatch.settings import SettingsError, load_settings


def test_metrics_listen_on_loopback_unless_an_address_is_set(tmp_path: Path) -> None:
    none = tmp_path / "none.toml"
    assert load_settings({}, none).metrics_address == "127.0.0.1"
    settings = load_settings({"NEWSWATCH_METRICS_PORT": "9108", "NEWSWATCH_METRICS_ADDRESS": "0.0.0.0"}, none)
    assert (settings.metrics_port, settings.metrics_address) == (9108, "0.0.0.0")


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "newswatch.toml"
    config.write_text('metrics_address = "10.0.0.5"\nbatch_size = 20\n', encoding="utf-8")
    assert load_settings({}, config).metrics_address == "10.0.0.5"
    settings = load_settings({"NEWSWATCH_METRICS_ADDRESS": "::", "NEWSWATCH_BATCH_SIZE": "30"}, config)
    assert (settings.metrics_address, settings.batch_size) == ("::", 30)


def test_a_bad_value_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="NEWSWATCH_METRICS_PORT: cannot use 'high'"):
        load_settings({"NEWSWATCH_METRICS_PORT": "high"}, tmp_path / "none.toml")
