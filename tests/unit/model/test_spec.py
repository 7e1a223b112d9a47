from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loopline.errors import SpecError
from loopline.spec import load_spec, shipped_specs


def test_every_shipped_spec_loads() -> None:
    assert shipped_specs()
    for path in shipped_specs():
        spec = load_spec(path.stem)
        assert spec.name == path.stem
        assert set(spec.entity_keys) <= set(spec.request_fields) | {"tailnum"}


def test_flight_delay_declares_its_inputs() -> None:
    spec = load_spec("flight-delay")
    assert spec.feature_service == "flight_delay_v1"
    assert spec.fields_of("numeric") == ["distance"]
    assert "carrier" in spec.fields_of("categorical")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match="flight-delay"):
        load_spec("no-such-model")


def test_an_invalid_field_is_named(tmp_path: Path) -> None:
    spec = yaml.safe_load(Path(shipped_specs()[0]).read_text())
    spec["decision_threshold"] = 1.5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="decision_threshold"):
        load_spec(path)


def test_split_dates_must_be_ordered(tmp_path: Path) -> None:
    spec = yaml.safe_load(Path(shipped_specs()[0]).read_text())
    spec["split"]["holdout_start"] = "2013-01-15"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="split dates"):
        load_spec(path)


def test_the_retraining_window_must_leave_room_to_train(tmp_path: Path) -> None:
    spec = yaml.safe_load(Path(shipped_specs()[0]).read_text())
    spec["retraining"] = {"window_days": 60, "validation_days": 30, "holdout_days": 30}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="retraining"):
        load_spec(path)
