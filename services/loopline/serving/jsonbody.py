"""Request bodies as strict JSON: orjson's parse, and duplicated object keys refused.

orjson keeps the last of duplicated keys silently, so ``{"sched_hour": 5, "sched_hour": 1e20}``
would be served as whatever a proxy or a log reader in between did not see. Checking every body
with the standard library's ``object_pairs_hook`` would triple the cost of parsing; instead the
key tokens in the text are counted (a closing quote, whitespace, a colon: ``":`` unless some
key has whitespace before its colon, then a regex) and compared with the keys the parsed objects
hold. Every key token is counted, so the count is at least the keys there are; when it equals
the parsed keys no key was repeated. Only a body where they differ (a duplicate, or a string
value that happens to contain ``":``) is parsed again, exactly. The check costs about as much
as orjson's parse of a native request.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from loopline.errors import BadRequest, brief

_KEY_TOKEN = re.compile(rb'"\s*:')
_SPACED_KEY_TOKEN = re.compile(rb'"[ \t\r\n]+:')


def loads(body: bytes) -> Any:
    """The JSON value of ``body``; ``BadRequest`` for invalid JSON or a duplicated key."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"body is not valid JSON: {error}") from None
    if isinstance(value, dict | list) and _key_tokens(body) != _keys(value):
        _refuse_duplicates(body)
    return value


def _key_tokens(body: bytes) -> int:
    """At least the number of keys in ``body``'s text (plus any ``":`` inside strings)."""
    if _SPACED_KEY_TOKEN.search(body):
        return len(_KEY_TOKEN.findall(body))
    return body.count(b'":')


def _keys(value: dict[str, Any] | list[Any]) -> int:
    """Keys held by the objects in ``value``. Arrays whose first item is not a container are
    skipped (tensor data): an undercount only sends the body to the exact check."""
    count, stack = 0, [value]
    item: Any
    while stack:
        item = stack.pop()
        if type(item) is dict:  # orjson builds exactly dicts and lists
            count += len(item)
            children: Any = item.values()
        elif item and (type(item[0]) is dict or type(item[0]) is list):
            children = item
        else:
            continue
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append(child)
    return count


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(key)
        result[key] = value
    return result


def _refuse_duplicates(body: bytes) -> None:
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _Duplicate as duplicate:
        raise BadRequest(f"body: key {brief(duplicate.key)} appears more than once") from None
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply") from None
    except ValueError:  # orjson took it; the standard library refuses a corner (long numbers)
        pass
