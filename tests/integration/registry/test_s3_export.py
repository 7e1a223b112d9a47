"""`loopline models export NAME s3://bucket/prefix` against a real S3 API on 127.0.0.1 (moto's
server), and the copy KServe's storage initializer makes of it: the directory the predictor
loads from /mnt/models."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopline.errors import RegistryError
from loopline.model.artifact import load_model
from loopline.registry import ModelRegistry, load_version_dir
from loopline.registry.s3 import S3Prefix, upload_version_dir
from loopline.serving.served import resolve_model
from loopline.settings import Settings
from tests.conftest import TrainedSetup
from tests.integration.registry.storage_initializer import aws_env, client, copy_prefix, s3_server
from tests.unit.registry.test_store import NAME, make_artifact, make_lineage

pytestmark = pytest.mark.integration

LOOPLINE = str(Path(sys.executable).with_name("loopline"))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    client(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """LOOPLINE_HOME with v1 and v2 of a small artifact registered, v1 the champion."""
    home = tmp_path / "home"
    registry = ModelRegistry(Settings(home=home).registry_dir)
    for n in (1, 2):
        artifact = make_artifact(tmp_path / f"artifact{n}", weights=bytes([n]))
        registry.register(NAME, artifact, make_lineage(artifact))
    registry.set_alias(NAME, "champion", "v1")
    return home


def loopline(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "LOOPLINE_HOME": str(home)}
    return subprocess.run(
        [LOOPLINE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def keys(endpoint: str, bucket: str) -> set[str]:
    listed = client(endpoint).list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


def test_the_storage_initializers_copy_is_what_the_predictor_serves(
    trained: TrainedSetup, endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """The real trained champion, uploaded by the CLI and copied back as KServe does, is the
    directory a local export writes, and the predictor's start-up accepts and loads it."""
    uri = f"s3://{bucket}/loopline/serving/{trained.spec.name}"
    result = loopline(
        trained.settings.home,
        aws_env(endpoint),
        "models",
        "export",
        trained.spec.name,
        uri,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert f'"path": "{uri}"' in result.stdout

    mnt_models = copy_prefix(client(endpoint), uri, tmp_path / "mnt" / "models")
    local = ModelRegistry(trained.settings.registry_dir).export(
        trained.spec.name, "champion", tmp_path / "local"
    )
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert (
        sorted(p.relative_to(mnt_models).as_posix() for p in mnt_models.rglob("*") if p.is_file())
        == files
    )
    _, mismatch, errors = filecmp.cmpfiles(local, mnt_models, files, shallow=False)
    assert (mismatch, errors) == ([], [])

    served = resolve_model(Settings(model_path=mnt_models, home=tmp_path / "serving-home"))
    champion = ModelRegistry(trained.settings.registry_dir).get(trained.spec.name, "champion")
    assert (served.name, served.version) == (trained.spec.name, champion.version)
    assert served.sha256 == champion.registered_sha256 == champion.lineage.artifact_sha256
    load_model(served.path, served.sha256)


def test_a_non_empty_prefix_is_refused_and_overwrite_replaces_it(
    home: Path, endpoint: str, bucket: str, tmp_path: Path
) -> None:
    env = aws_env(endpoint)
    uri = f"s3://{bucket}/serving/{NAME}"
    s3 = client(endpoint)
    s3.put_object(Bucket=bucket, Key=f"serving/{NAME}/left-by-v0.bin", Body=b"old")
    # A sibling prefix and another model: not the export's to touch.
    s3.put_object(Bucket=bucket, Key=f"serving/{NAME}-canary/manifest.json", Body=b"{}")

    refused = loopline(home, env, "models", "export", NAME, uri)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"error: {uri} is not empty: pass --overwrite to replace it"

    for version in ("v1", "v2"):
        done = loopline(
            home, env, "models", "export", NAME, uri, "--version", version, "--overwrite"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"exported {NAME} {version} to {uri}"
    exported = {
        k.removeprefix(f"serving/{NAME}/")
        for k in keys(endpoint, bucket)
        if k.startswith(f"serving/{NAME}/")
    }
    assert exported == {
        "manifest.json",
        "network.json",
        "preprocessing.json",
        "weights.safetensors",
        "reference_sample.parquet",
        "lineage.json",
        "registry.json",
    }
    assert f"serving/{NAME}-canary/manifest.json" in keys(endpoint, bucket)
    # The chart's storageUri ends in "/": the storage initializer then copies this model's
    # objects only; without it, the other model's land in /mnt/models/-canary/.
    s3_dir = copy_prefix(s3, f"{uri}/", tmp_path / "with-slash")
    assert not (s3_dir / "-canary").exists()
    assert load_version_dir(s3_dir).version == "v2"
    assert (copy_prefix(s3, uri, tmp_path / "without") / "-canary" / "manifest.json").is_file()
    body = s3.get_object(Bucket=bucket, Key=f"serving/{NAME}/registry.json")["Body"].read()
    assert b'"version": "v2"' in body


def test_lineage_goes_first_on_replace_and_last_on_write(
    home: Path, endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """While a version is replaced, the prefix has no lineage.json: a copy taken in between is
    incomplete, and refused by the predictor, never a mix of two versions."""
    registry = ModelRegistry(Settings(home=home).registry_dir)
    dest = S3Prefix(bucket, f"serving/{NAME}")
    s3 = client(endpoint)
    calls: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("PutObject", "DeleteObject", "DeleteObjects"):
            calls.append((model.name, str(params.get("Key", "")).removeprefix(dest.prefix + "/")))

    s3.meta.events.register("provide-client-params.s3.*", record)
    upload_version_dir(registry.export(NAME, "v1", tmp_path / "v1"), dest, client=s3)
    assert calls[-1] == ("PutObject", "lineage.json")
    assert {op for op, _ in calls} == {"PutObject"}

    calls.clear()
    s3.put_object(Bucket=bucket, Key=dest.key("stale.bin"), Body=b"x")
    calls.clear()
    upload_version_dir(
        registry.export(NAME, "v2", tmp_path / "v2"), dest, overwrite=True, client=s3
    )
    assert calls[0] == ("DeleteObject", "lineage.json")
    assert calls[-2] == ("PutObject", "lineage.json")
    assert calls[-1] == ("DeleteObjects", "")
    assert dest.key("stale.bin") not in keys(endpoint, bucket)
    copied = copy_prefix(s3, str(dest), tmp_path / "copied")
    assert load_version_dir(copied).version == "v2"


@pytest.mark.parametrize(
    ("destination", "env_overrides", "named"),
    [
        ("s3://{bucket}", {}, "expected s3://<bucket>/<prefix>"),
        ("s3:///serving/x", {}, "expected s3://<bucket>/<prefix>"),
        ("s3://no-such-bucket-here/serving/x", {}, "NoSuchBucket"),
        (
            "s3://{bucket}/serving/x",
            {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
            "Unable to locate credentials",
        ),
    ],
)
def test_upload_errors_are_one_line(
    home: Path,
    endpoint: str,
    bucket: str,
    destination: str,
    env_overrides: dict[str, str],
    named: str,
) -> None:
    env = aws_env(endpoint, **env_overrides)
    for key in [k for k, v in env_overrides.items() if not v]:
        del env[key]
    result = loopline(home, env, "models", "export", NAME, destination.format(bucket=bucket))
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert named in line


def test_an_exported_directory_with_an_empty_file_is_refused(tmp_path: Path) -> None:
    """KServe's storage initializer skips empty objects: the predictor would miss the file."""
    exported = tmp_path / "export"
    exported.mkdir()
    (exported / "lineage.json").write_text("{}")
    (exported / "empty.bin").write_bytes(b"")
    with pytest.raises(RegistryError, match=r"empty files \(empty\.bin\)"):
        upload_version_dir(exported, S3Prefix("b", "p"), client=object())


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://models/serving/flight-delay", S3Prefix("models", "serving/flight-delay")),
        ("s3://models/serving/flight-delay/", S3Prefix("models", "serving/flight-delay")),
    ],
)
def test_s3_prefixes_parse(uri: str, expected: S3Prefix) -> None:
    assert S3Prefix.parse(uri) == expected
    assert str(expected) == uri.rstrip("/")
