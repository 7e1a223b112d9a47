"""The Docker build context: the files a COPY source takes from the repository, filtered by
``.dockerignore`` with Docker's rules (the last matching pattern wins; parents count)."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

Rules = list[tuple[bool, re.Pattern[str]]]
"""(negated, regex) for each pattern of a .dockerignore, in order."""


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``**/`` any folders, ``*`` and ``?`` within one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def ignore_rules(path: Path) -> Rules:
    """(negated, regex) for each pattern of a .dockerignore, in order."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def is_ignored(relative: str, rules: Rules) -> bool:
    """Docker's rule: a pattern matching the path or any of its parents decides; last wins."""
    candidates = [relative, *(str(p) for p in PurePosixPath(relative).parents if str(p) != ".")]
    ignored = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            ignored = not negated
    return ignored


def context_files(root: Path, source: str, rules: Rules) -> list[str]:
    """The files of one COPY source that the build context holds, relative to the context."""
    path = root / source
    if path.is_file():
        relative = path.relative_to(root).as_posix()
        return [] if is_ignored(relative, rules) else [relative]
    files = []
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(root).as_posix()
        if file.is_file() and not is_ignored(relative, rules):
            files.append(relative)
    return files
