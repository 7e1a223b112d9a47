"""Guard the public error names (like HTTPX's tests/test_exported_members.py)."""

from __future__ import annotations

import loopline.errors as errors


def test_every_exported_error_exists_and_derives_from_the_base() -> None:
    exported = set(errors.__all__)
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    assert exported == defined
    for name in exported - {"LooplineError"}:
        assert issubclass(getattr(errors, name), errors.LooplineError)
