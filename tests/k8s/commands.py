"""The `loopline` invocations manifests run, read out of containers and shell scripts, and the
verbs the CLI registers; used by test_job_commands.py."""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import typer
import typer.core
import yaml
from typer.exceptions import TyperException

from tests.k8s import dockerfile, kube

LOOPLINE = Path(sys.executable).parent / "loopline"
"""The console script of this virtualenv: the same package the image installs."""

SHELLS = {"sh", "bash", "ash", "dash"}
_WRAPPERS = {"exec", "env", "command", "nice"}
_RESERVED = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done"}
_OPERATORS = {";", "&", "&&", "|", "||", ";;", "(", ")", "\n"}


@dataclass(frozen=True)
class Invocation:
    where: str
    """CronJob/<name> container <name>: where the command runs."""
    argv: tuple[str, ...]
    """The arguments after `loopline`."""

    def __str__(self) -> str:
        return f"{self.where}: `loopline {shlex.join(self.argv)}`"


# --- what the image runs ------------------------------------------------------------------------


@functools.cache
def image_defaults() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(ENTRYPOINT, CMD) of the Dockerfile's last stage, the image every Loopline pod runs."""
    stage = dockerfile.parse(kube.ROOT / "Dockerfile").stages[-1]
    entrypoint: list[str] = []
    cmd: list[str] = []
    for ins in stage.instructions:
        if ins.command == "ENTRYPOINT":
            entrypoint = dockerfile.exec_form(ins.args)
        elif ins.command == "CMD":
            cmd = dockerfile.exec_form(ins.args)
    assert entrypoint, "the Dockerfile has no ENTRYPOINT"
    return tuple(entrypoint), tuple(cmd)


@functools.cache
def loopline_image_repository() -> str:
    values = yaml.safe_load((kube.CHART / "values.yaml").read_text())
    repository: str = values["image"]["repository"]
    return repository


def _is_loopline(word: str) -> bool:
    return PurePosixPath(word).name == "loopline"


def _simple_command(words: Sequence[str], where: str) -> tuple[str, ...] | None:
    """The arguments after `loopline` when a simple command runs it, else None."""
    rest = list(words)
    while rest and (
        rest[0] in _WRAPPERS | _RESERVED or ("=" in rest[0] and not rest[0].startswith("-"))
    ):
        rest.pop(0)
    if rest and _is_loopline(rest[0]):
        return tuple(rest[1:])
    hidden = [w for w in rest if _is_loopline(w)]
    assert not hidden, f"{where}: cannot tell how `{shlex.join(words)}` runs loopline"
    return None


def script_invocations(script: str, where: str) -> Iterator[tuple[str, ...]]:
    """The `loopline` invocations of a POSIX shell script, one per simple command."""
    # Newlines separate commands, as in sh: a punctuation character, not whitespace.
    lexer = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    words: list[str] = []
    redirect = False
    for token in [*lexer, "\n"]:
        if token in _OPERATORS or set(token) <= set(";&|()\n"):
            if words:
                argv = _simple_command(words, where)
                if argv is not None:
                    yield argv
            words, redirect = [], False
        elif token[0] in "<>" and set(token) <= set("<>&"):
            # The next word is a file (or, after >&, a descriptor), not an argument; a number
            # right before the operator is the descriptor redirected (2>/dev/null, 2>&1). The
            # lexer drops the spacing, so `echo 2 >x` reads the same: no script here writes it.
            if words and words[-1].isdigit():
                words.pop()
            redirect = True
        elif redirect:
            redirect = False
        else:
            words.append(token)


def container_invocations(where: str, container: kube.Doc) -> Iterator[Invocation]:
    """What a container runs of `loopline`: by its command, on the image's entrypoint, or in a
    shell script."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    at = f"{where} container {container['name']}"
    if not command:
        if loopline_image_repository() not in container.get("image", ""):
            return  # another image (Redis), or a container whose image KServe fills in
        entrypoint, cmd = image_defaults()
        command = list(entrypoint)
        args = args or list(cmd)
    argv = [*command, *args]
    program = PurePosixPath(argv[0]).name
    if program in SHELLS:
        flags = [a for a in argv[1:] if a.startswith("-")]
        operands = [a for a in argv[1:] if not a.startswith("-")]
        assert any("c" in f for f in flags), f"{at}: a shell without -c"
        assert operands, f"{at}: a shell without a script"
        for in_script in script_invocations(operands[0], at):
            yield Invocation(at, in_script)
        return
    found = _simple_command(argv, at)
    if found is not None:
        yield Invocation(at, found)


def invocations(docs: Sequence[kube.Doc]) -> list[Invocation]:
    """Every `loopline` invocation of every CronJob, Job and Pod (the helm test pod included)
    and of the ServingRuntime, whose container KServe runs as the predictor."""
    found: list[Invocation] = []
    for doc in docs:
        if doc["kind"] == "ServingRuntime":
            for container in doc["spec"]["containers"]:
                found += container_invocations(
                    f"ServingRuntime/{doc['metadata']['name']}", container
                )
            continue
        if doc["kind"] not in ("CronJob", "Job", "Pod"):
            continue
        for where, pod in kube.pod_specs(doc):
            for container in kube.containers(pod):
                found += container_invocations(where, container)
    return found


# --- what the CLI has ---------------------------------------------------------------------------


Group = typer.core.TyperGroup
"""What typer builds a Typer app into: a click group (typer ships its own copy of click)."""


@functools.cache
def cli() -> Group:
    """The `loopline` command as click sees it, from the typer app the console script runs."""
    from loopline.cli import app

    command = typer.main.get_command(app)
    assert isinstance(command, Group), type(command)
    return command


def registered_verbs(group: Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The path of every command (not group) under ``group``: ("models", "export"), ..."""
    verbs: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if isinstance(command, Group):
            verbs |= registered_verbs(command, (*prefix, name))
        else:
            verbs.add((*prefix, name))
    return verbs


def verb_path(argv: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """(verb path, the arguments after it): the leading words that walk the CLI's groups, with
    the first word no group knows kept in the path (so an unknown verb is named)."""
    command: object = cli()
    path: list[str] = []
    rest = list(argv)
    while isinstance(command, Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        path.append(name)
        sub = command.commands.get(name)
        if sub is None:
            break
        command = sub
    return tuple(path), rest


def check(found: Sequence[Invocation]) -> set[tuple[str, ...]]:
    """Raise unless every invocation names a registered verb with arguments it parses; return
    the distinct verbs."""
    verbs = registered_verbs(cli())
    known = ", ".join(sorted(" ".join(v) for v in verbs))
    problems: list[str] = []
    used: set[tuple[str, ...]] = set()
    for invocation in found:
        path, rest = verb_path(invocation.argv)
        if path not in verbs:
            problems.append(
                f"{invocation} runs `loopline {' '.join(path)}`, which is no command of the CLI"
            )
            continue
        used.add(path)
        command = cli()
        for name in path[:-1]:
            sub = command.commands[name]
            assert isinstance(sub, Group)
            command = sub
        try:
            # Parses the arguments as the verb would (types, options), without running it.
            command.commands[path[-1]].make_context(" ".join(("loopline", *path)), list(rest))
        except TyperException as error:
            problems.append(f"{invocation}: {error}")
    assert not problems, "\n".join([*problems, f"(the CLI's commands: {known})"])
    return used
