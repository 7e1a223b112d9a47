from __future__ import annotations

import pytest

from loopline.errors import SettingsError
from loopline.settings import Settings, load_settings


def test_embedded_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPLINE_REDIS_URL", raising=False)
    settings = Settings()
    assert settings.feast_redis_connection_string() is None
    assert settings.data_dir == settings.feature_repo / "data"


def test_environment_selects_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_REDIS_URL", "redis://:s3cret@cache.internal:6380/2")
    assert Settings().feast_redis_connection_string() == "cache.internal:6380,db=2,password=s3cret"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379", "127.0.0.1:6379"),
        ("redis://redis/0", "redis:6379,db=0"),
        ("rediss://r:7000/1", "r:7000,db=1,ssl=true"),
    ],
)
def test_redis_urls_become_feast_connection_strings(url: str, expected: str) -> None:
    assert Settings(redis_url=url).feast_redis_connection_string() == expected


def test_a_non_redis_url_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="LOOPLINE_REDIS_URL"):
        Settings(redis_url="http://x").feast_redis_connection_string()


def test_the_redis_log_sink_needs_a_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPLINE_REDIS_URL", raising=False)
    monkeypatch.setenv("LOOPLINE_PREDICTION_LOG_SINK", "redis")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid settings: LOOPLINE_PREDICTION_LOG_SINK=redis needs "
        "LOOPLINE_PREDICTION_LOG_REDIS_URL or LOOPLINE_REDIS_URL"
    )
    monkeypatch.setenv("LOOPLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().prediction_log_url == "redis://127.0.0.1:6379/0"


def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_WORKERS", "0")
    with pytest.raises(SettingsError, match=r"^invalid settings: LOOPLINE_WORKERS: .*1") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_the_file_sink_ships_nowhere() -> None:
    assert Settings(redis_url="redis://r:6379/0").prediction_log_url is None
