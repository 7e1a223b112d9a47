"""Native request validation: typed fields, the offending field named in every error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loopline.errors import BadRequest
from loopline.serving.schema import InputSchema, columns_to_rows, parse_objects, parse_timestamp
from loopline.spec import load_spec

REQUEST = {**load_spec("flight-delay").example_request, "distance": 1400}  # an int is a number


def test_fields_are_typed_by_feast_then_by_the_spec(schema: InputSchema) -> None:
    assert schema.fields == {
        "origin": "string",
        "carrier": "string",
        "tailnum": "string",
        "dest": "string",
        "sched_hour": "int64",
        "weekday": "int64",
        "distance": "double",
    }
    assert schema.optional == ("flight_id", "event_timestamp")


def test_a_valid_object_becomes_a_typed_row(schema: InputSchema) -> None:
    row = schema.parse_object(
        {**REQUEST, "flight_id": "f-1", "event_timestamp": "2013-08-31T20:00:00Z"}
    )
    assert row.fields == {**REQUEST, "distance": 1400.0}
    assert isinstance(row.fields["distance"], float)
    assert row.client_id == "f-1"
    assert row.as_of == datetime(2013, 8, 31, 20, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"origin": None}, "field 'origin' is required"),
        ({"sched_hour": "5"}, "field 'sched_hour': expected an integer, got '5'"),
        ({"sched_hour": 5.5}, "field 'sched_hour': expected an integer"),
        ({"distance": "far"}, "field 'distance': expected a number"),
        ({"distance": True}, "field 'distance': expected a number"),
        ({"carrier": 12}, "field 'carrier': expected a string"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"event_timestamp": "yesterday"}, "field 'event_timestamp': expected an ISO 8601"),
        ({"flight_id": ["x"]}, "field 'flight_id': expected a string"),
    ],
)
def test_errors_name_the_field(
    schema: InputSchema, change: dict[str, object], message: str
) -> None:
    request = {k: v for k, v in {**REQUEST, **change}.items() if v is not None}
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        schema.parse_object(request)


def test_integral_floats_are_accepted_as_integers(schema: InputSchema) -> None:
    assert schema.parse_object({**REQUEST, "sched_hour": 5.0}).fields["sched_hour"] == 5


def test_a_naive_timestamp_is_utc_and_the_default_is_now() -> None:
    assert (
        parse_timestamp("2013-08-31T20:00:00") == datetime(2013, 8, 31, 20, tzinfo=UTC).timestamp()
    )
    assert abs(parse_timestamp(None) - datetime.now(UTC).timestamp()) < 5


def test_batch_errors_name_the_item(schema: InputSchema) -> None:
    assert len(parse_objects(schema, [REQUEST, REQUEST], limit=10)) == 2
    with pytest.raises(BadRequest, match=r"\[1\] field 'weekday' is required"):
        parse_objects(schema, [REQUEST, {k: v for k, v in REQUEST.items() if k != "weekday"}], 10)
    with pytest.raises(BadRequest, match="non-empty JSON array"):
        parse_objects(schema, {"instances": []}, 10)
    with pytest.raises(BadRequest, match="at most 1 requests"):
        parse_objects(schema, [REQUEST, REQUEST], limit=1)


def test_a_request_id_names_the_prediction(schema: InputSchema) -> None:
    assert schema.parse_object({**REQUEST, "request_id": "order-7"}).request_id == "order-7"
    assert schema.parse_object({**REQUEST, "request_id": None}).request_id is None
    assert schema.parse_object(REQUEST).request_id is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (7, "field 'request_id': expected a non-empty string, got 7"),
        ("", "field 'request_id': expected a non-empty string, got ''"),
        ("x" * 257, "field 'request_id': 257 characters, at most 256"),
        ("a\tb", "field 'request_id': 'a\\\\tb' has a control character"),
        ("ab\n", "field 'request_id': 'ab\\\\n' has a control character"),
    ],
)
def test_a_bad_request_id_is_refused(schema: InputSchema, value: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        schema.parse_object({**REQUEST, "request_id": value})


def test_request_ids_repeated_in_a_batch_are_refused(schema: InputSchema) -> None:
    rows = parse_objects(schema, [{**REQUEST, "request_id": "a"}, REQUEST, REQUEST], limit=10)
    assert [row.request_id for row in rows] == ["a", None, None]
    with pytest.raises(BadRequest, match=r"\[2\] field 'request_id': 'a' is item \[0\]'s too"):
        parse_objects(
            schema, [{**REQUEST, "request_id": "a"}, REQUEST, {**REQUEST, "request_id": "a"}]
        )


def test_the_oip_id_names_each_row(schema: InputSchema) -> None:
    columns = {name: [value] * 2 for name, value in REQUEST.items()}
    rows = columns_to_rows(schema, columns, 2, "batch-1")
    assert [row.request_id for row in rows] == ["batch-1:0", "batch-1:1"]
    one = columns_to_rows(schema, {name: [value] for name, value in REQUEST.items()}, 1, "b")
    assert one[0].request_id == "b"
    assert columns_to_rows(schema, columns, 2)[0].request_id is None
