"""The Dockerfile's steps, without Docker: its COPY steps build a context filtered by
.dockerignore, its RUN step installs into a fresh virtualenv with the locked constraints, the
runtime stage gets only what its COPY steps take, and the entrypoint answers `serve --help` and
serves a model until the OIP ready route says 200. A broken COPY or a missing dependency fails
here. Nothing is cached between runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loopline.registry.store import ModelRegistry
from tests.conftest import TrainedSetup
from tests.k8s import dockerfile, dockerignore, kube, predictor
from tests.redis_server import free_port

pytestmark = pytest.mark.k8s

DOCKERFILE = kube.ROOT / "Dockerfile"


def test_dockerfile_shape() -> None:
    """Multi-stage, slim base, CPU torch, non-root, entrypoint `loopline`, ports as in the chart."""
    parsed = dockerfile.parse(DOCKERFILE)
    assert [s.name for s in parsed.stages] == ["build", "runtime"]
    assert parsed.global_args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    build, runtime = parsed.stages
    build_args = {i.args.split("=")[0]: i.args for i in build.instructions if i.command == "ARG"}
    assert build_args["TORCH_INDEX_URL"].endswith("download.pytorch.org/whl/cpu")
    (run,) = (i.args for i in build.instructions if i.command == "RUN")
    assert "--constraint requirements.lock" in run
    # The runtime stage's one RUN creates the user and its folders: no compilers, no pip.
    # (The replay below does not run it: it would add a user to this machine.)
    (user_setup,) = (i.args for i in runtime.instructions if i.command == "RUN")
    programs = {step.split()[0] for step in user_setup.split("&&")}
    assert programs == {"groupadd", "useradd", "mkdir", "chown"}
    (user,) = (i.args for i in runtime.instructions if i.command == "USER")
    assert user.split(":")[0] == "10001"
    copies = [i.args for i in runtime.instructions if i.command == "COPY"]
    assert copies[0] == "--from=build /opt/loopline /opt/loopline"
    image = dockerfile.Image(root=Path("/"))
    for ins in runtime.instructions:
        if ins.command == "ENTRYPOINT":
            image.entrypoint = dockerfile.exec_form(ins.args)
        if ins.command == "CMD":
            image.cmd = dockerfile.exec_form(ins.args)
        if ins.command == "EXPOSE":
            image.exposed = [int(p) for p in ins.args.split()]
    assert image.entrypoint == ["loopline"]
    assert image.cmd == ["serve", "--port", "3000", "--grpc-port", "8081"]
    assert image.exposed == [3000, 8081]
    values = (kube.CHART / "values.yaml").read_text()
    assert "httpPort: 3000" in values
    assert "grpcPort: 8081" in values


def test_bentofile_builds_the_same_service() -> None:
    """bentofile.yaml: the same package sources, lock and CPU torch as the Dockerfile, and a
    service import path that exists."""
    from bentoml._internal.bento.build_config import BentoBuildConfig

    with (kube.ROOT / "bentofile.yaml").open() as f:
        config = BentoBuildConfig.from_yaml(f)
    assert config.python.requirements_txt == "./requirements.lock"
    assert config.python.extra_index_url == ["https://download.pytorch.org/whl/cpu"]
    rules = dockerignore.ignore_rules(kube.ROOT / ".dockerignore")
    image_sources = {
        f
        for source in ("services", "feature_repo")
        for f in dockerignore.context_files(kube.ROOT, source, rules)
        if f.endswith((".py", ".yaml"))
    }
    from pathspec import PathSpec

    include = PathSpec.from_lines("gitwildmatch", config.include or [])
    exclude = PathSpec.from_lines("gitwildmatch", config.exclude or [])
    bento_sources = {
        f for f in image_sources if include.match_file(f) and not exclude.match_file(f)
    }
    assert bento_sources == image_sources
    module, _, attribute = config.service.partition(":")
    service = __import__(module, fromlist=[attribute])
    assert hasattr(service, attribute), config.service


def test_image_steps_in_a_fresh_virtualenv(trained: TrainedSetup, tmp_path: Path) -> None:
    parsed = dockerfile.parse(DOCKERFILE)
    roots = dockerfile.image_roots(parsed)
    # `python` of the base image: this machine's Python 3.11, not this test's virtualenv.
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python").symlink_to(os.path.realpath(sys.executable))
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    run_env["PATH"] = f"{shims}{os.pathsep}{run_env['PATH']}"
    # This machine has no route to PyTorch's index; pip finds the CPU wheel through its own
    # configuration (PIP_FIND_LINKS), as `docker build --build-arg TORCH_INDEX_URL=...` would.
    local_index = tmp_path / "no-extra-index"
    local_index.mkdir()
    args = {**parsed.global_args, "TORCH_INDEX_URL": local_index.as_uri()}

    build = dockerfile.replay(
        parsed.stage("build"),
        dockerfile.Image(root=tmp_path / "rootfs"),
        context=kube.ROOT,
        args=args,
        stages={},
        roots=roots,
        run_env=run_env,
    )
    # The runtime stage starts from nothing at the same paths: the build stage's root moves
    # away, so the virtualenv works only if COPY --from carried it whole.
    (tmp_path / "rootfs").rename(tmp_path / "build-stage")
    build.root = tmp_path / "build-stage"
    runtime = dockerfile.replay(
        parsed.stage("runtime"),
        dockerfile.Image(root=tmp_path / "rootfs"),
        context=kube.ROOT,
        args=args,
        stages={"build": build},
        roots=roots,
        run_env=run_env,
        execute_run=False,
    )
    assert not runtime.host("/src").exists()
    assert not runtime.host("/app/feature_repo/data").exists()

    env = {**run_env, **runtime.env}
    env["PATH"] = f"{runtime.env['PATH'].rstrip(os.pathsep)}{os.pathsep}{run_env['PATH']}"
    home = runtime.host(runtime.env["HOME"])
    home.mkdir(parents=True, exist_ok=True)
    entrypoint = shutil.which(runtime.entrypoint[0], path=env["PATH"])
    assert entrypoint == str(runtime.host("/opt/loopline/bin/loopline"))
    workdir = runtime.host(runtime.workdir)

    result = subprocess.run(
        [entrypoint, "serve", "--help"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"loopline serve --help: {result.stdout}{result.stderr}"
    assert "--port" in result.stdout
    assert "--grpc-port" in result.stdout

    # What the chart mounts: the exported model at LOOPLINE_MODEL_PATH and the feature repo's
    # data (Feast registry, online store) next to the image's definitions.
    model_dir = ModelRegistry(trained.settings.registry_dir).export(
        trained.spec.name, "champion", tmp_path / "mnt-models"
    )
    (runtime.host("/app/feature_repo") / "data").symlink_to(trained.settings.data_dir.resolve())
    port, grpc_port = free_port(), free_port()
    cmd = [*runtime.cmd]
    cmd[cmd.index("--port") + 1] = str(port)
    cmd[cmd.index("--grpc-port") + 1] = str(grpc_port)
    env["LOOPLINE_MODEL_PATH"] = str(model_dir)
    env["LOOPLINE_HOST"] = "127.0.0.1"  # the image listens on all interfaces; tests on loopback
    with predictor.running(
        [entrypoint, *cmd], env=env, cwd=workdir, port=port, log=tmp_path / "serve.log"
    ) as base:
        status, _ = predictor.get(f"{base}/v2/models/{trained.spec.name}/ready")
        assert status == 200
        assert predictor.get(f"{base}/v2/health/live")[0] == 200
