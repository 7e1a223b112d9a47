"""Errors Loopline raises on purpose. Each names what went wrong and what to do about it.

LooplineError
├── DataNotPreparedError      a job needs `loopline data prepare` first
├── SpecError                 a model spec is missing or invalid
├── ArtifactIntegrityError    an artifact's files do not match their recorded sha256
└── RegistryError             an unknown model, version or alias
"""

__all__ = [
    "ArtifactIntegrityError",
    "DataNotPreparedError",
    "LooplineError",
    "RegistryError",
    "SpecError",
]


class LooplineError(Exception):
    """Base class of every error Loopline raises on purpose."""


class DataNotPreparedError(LooplineError):
    """A prepared source file is missing."""


class SpecError(LooplineError):
    """A model spec cannot be read or does not validate."""


class ArtifactIntegrityError(LooplineError):
    """An artifact file is missing or its sha256 differs from the recorded one."""


class RegistryError(LooplineError):
    """The registry has no such model, version or alias."""
