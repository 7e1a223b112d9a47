"""Read the Dockerfile and replay it without Docker, into a directory standing for the image.

Only what the project's Dockerfile uses is understood: ARG, ENV, WORKDIR, COPY (with --from),
RUN, USER, EXPOSE, ENTRYPOINT and CMD in exec form. Absolute paths in the image (``/opt/...``)
live under a root directory on this machine; RUN steps run with the build arguments and ENV in
their environment, as Docker runs them, and the build context is the repository filtered by
``.dockerignore`` (``tests.k8s.dockerignore``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tests.k8s.dockerignore import Rules, context_files, ignore_rules


@dataclass(frozen=True)
class Instruction:
    command: str
    """Upper case: COPY, RUN, ..."""
    args: str


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with continuations joined and comments dropped (also inside continuations)."""
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield current + line
        current = ""
    if current:
        yield current


def parse(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        command, _, args = line.partition(" ")
        command, args = command.upper(), args.strip()
        if command == "FROM":
            parts = re.split(r"\s+as\s+", args, flags=re.IGNORECASE)
            base, name = parts[0], parts[1] if len(parts) > 1 else str(len(stages))
            stages.append(Stage(name=name, base=base))
        elif not stages and command == "ARG":
            key, _, default = args.partition("=")
            global_args[key] = default
        elif stages:
            stages[-1].instructions.append(Instruction(command, args))
        else:
            raise ValueError(f"{command} before the first FROM")
    return Dockerfile(global_args, stages)


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Docker's ``$VAR`` and ``${VAR}`` substitution (no modifiers)."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: variables.get(m.group(1) or m.group(2), ""),
        value,
    )


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"not an exec-form list: {args}")
    return value


def env_pairs(args: str) -> list[tuple[str, str]]:
    return [tuple(item.split("=", 1)) for item in shlex.split(args)]  # type: ignore[misc]


# --- replay -------------------------------------------------------------------------------------


@dataclass
class Image:
    """A stage replayed under ``root``: its environment, working directory, entrypoint."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)

    def host(self, path: str) -> Path:
        """Where an absolute image path lives on this machine."""
        return self.root / PurePosixPath(path).relative_to("/")

    def host_paths(self, text: str, roots: set[str]) -> str:
        """Rewrite absolute image paths under one of ``roots`` (e.g. /opt) in a command."""
        pattern = "|".join(re.escape(r) for r in sorted(roots, key=len, reverse=True))
        return re.sub(
            rf"(?<![\w./-])({pattern})(?=[/\s\"':]|$)",
            lambda m: str(self.host(m.group(1))),
            text,
        )


def image_roots(dockerfile: Dockerfile) -> set[str]:
    """First segments of the absolute paths the Dockerfile writes or names (/opt, /src, ...)."""
    roots = set()
    for stage in dockerfile.stages:
        for ins in stage.instructions:
            for path in re.findall(r"(?<![\w.$-])(/[A-Za-z][\w.-]*)", ins.args):
                if ins.command in ("WORKDIR", "COPY", "ENV", "RUN"):
                    roots.add(path)
    return {r for r in roots if r.count("/") == 1 and r not in ("/bin", "/usr", "/etc", "/dev")}


def replay(
    stage: Stage,
    image: Image,
    *,
    context: Path,
    args: Mapping[str, str],
    stages: Mapping[str, Image],
    roots: set[str],
    run_env: Mapping[str, str],
    execute_run: bool = True,
) -> Image:
    """Apply a stage's instructions to ``image``. RUN steps run through bash on this machine with
    ``run_env`` as the base environment, unless ``execute_run`` is false (steps that create users
    must not run here); ``stages`` holds earlier stages for COPY --from."""
    rules = ignore_rules(context / ".dockerignore")
    variables = dict(args)
    for ins in stage.instructions:
        if ins.command == "ARG":
            key, _, default = ins.args.partition("=")
            variables[key] = args.get(key, default)
        elif ins.command == "ENV":
            for key, value in env_pairs(ins.args):
                expanded = expand(value, {**variables, **image.env})
                image.env[key] = image.host_paths(expanded, roots)
                variables[key] = image.env[key]
        elif ins.command == "WORKDIR":
            image.workdir = str(PurePosixPath(image.workdir) / expand(ins.args, variables))
            image.host(image.workdir).mkdir(parents=True, exist_ok=True)
        elif ins.command == "COPY":
            _copy(ins.args, image, context=context, rules=rules, stages=stages, variables=variables)
        elif ins.command == "RUN" and not execute_run:
            continue
        elif ins.command == "RUN":
            command = image.host_paths(ins.args, roots)
            env = {**run_env, **variables, **image.env}
            env["PATH"] = os.pathsep.join(
                p for p in (image.env.get("PATH", ""), run_env["PATH"]) if p
            )
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=image.host(image.workdir),
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if result.returncode != 0:
                # pip's notes about local index folders that lack a package are not the story.
                lines = [
                    line
                    for line in (result.stdout + result.stderr).splitlines()
                    if "is neither a file nor a directory" not in line
                ]
                tail = "\n".join(lines[-80:])
                raise AssertionError(f"RUN {ins.args}\nexited {result.returncode}:\n{tail}")
        elif ins.command == "ENTRYPOINT":
            image.entrypoint = exec_form(ins.args)
        elif ins.command == "CMD":
            image.cmd = exec_form(ins.args)
        elif ins.command == "EXPOSE":
            image.exposed = [int(p.split("/")[0]) for p in ins.args.split()]
        elif ins.command not in ("USER", "LABEL"):
            raise ValueError(f"the replay does not understand {ins.command}")
    return image


def _copy(
    raw: str,
    image: Image,
    *,
    context: Path,
    rules: Rules,
    stages: Mapping[str, Image],
    variables: Mapping[str, str],
) -> None:
    words = shlex.split(expand(raw, variables))
    options = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("--")}
    *sources, dest = [w for w in words if not w.startswith("--")]
    target = PurePosixPath(image.workdir) / dest
    if "--from" in options:
        source_image = stages[options["--from"]]
        for source in sources:
            shutil.copytree(
                source_image.host(source),
                image.host(str(target)),
                symlinks=True,
                dirs_exist_ok=True,
            )
        return
    for source in sources:
        files = context_files(context, source.rstrip("/"), rules)
        if not files:
            raise FileNotFoundError(f"COPY {source}: not in the build context")
        source_root = source.rstrip("/")
        is_dir = (context / source_root).is_dir()
        for file in files:
            if is_dir:
                relative = PurePosixPath(file).relative_to(source_root)
                destination = image.host(str(target / relative))
            elif dest.endswith("/") or len(sources) > 1:
                destination = image.host(str(target / PurePosixPath(file).name))
            else:
                destination = image.host(str(target))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / file, destination)
