"""Exported version directories in S3 or an S3-compatible store (MinIO, Ceph's RGW, ...).

An InferenceService whose ``storageUri`` is ``s3://bucket/prefix`` starts with KServe's storage
initializer, which copies every object whose key begins with ``prefix`` to ``/mnt/models``, the
rest of the key (its leading ``/`` removed) naming the file; keys ending in ``/`` and empty
objects are skipped. So ``upload_version_dir`` puts each file of an exported directory at
``<prefix>/<relative path>`` and leaves nothing else under ``<prefix>/``: the copy is then the
directory ``load_version_dir`` reads.

Credentials, region and endpoint come from boto3's own chain, the variables the storage
initializer reads too: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``
and, for MinIO and other S3-compatible stores, ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from loopline.errors import RegistryError
from loopline.registry.export import LINEAGE_FILE
from loopline.registry.store import ModelRegistry

SCHEME = "s3://"
_DELETE_BATCH = 1000
"""Most keys one DeleteObjects request may name."""


@dataclass(frozen=True)
class S3Prefix:
    """``s3://bucket/prefix``: the folder-like key prefix an exported directory is uploaded to."""

    bucket: str
    prefix: str
    """Without a leading or trailing ``/``; never empty (a model does not own a whole bucket)."""

    @classmethod
    def parse(cls, uri: str) -> S3Prefix:
        """``RegistryError`` naming ``uri`` unless it is ``s3://<bucket>/<prefix>``."""
        bucket, _, prefix = uri.removeprefix(SCHEME).partition("/")
        prefix = prefix.strip("/")
        if not uri.startswith(SCHEME) or not bucket or not prefix:
            raise RegistryError(
                f"{uri!r} is not an S3 destination: expected s3://<bucket>/<prefix>, "
                "e.g. s3://models/loopline/serving/flight-delay"
            )
        return cls(bucket, prefix)

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"


def is_s3_uri(destination: str) -> bool:
    return destination.startswith(SCHEME)


def export_to_s3(
    registry: ModelRegistry, name: str, ref: str, dest: S3Prefix, *, overwrite: bool = False
) -> list[str]:
    """Export ``name``'s version ``ref`` and upload it to ``dest``; return the keys written."""
    with tempfile.TemporaryDirectory(prefix="loopline-export-") as scratch:
        exported = registry.export(name, ref, Path(scratch) / "version")
        return upload_version_dir(exported, dest, overwrite=overwrite)


def upload_version_dir(
    src: Path, dest: S3Prefix, *, overwrite: bool = False, client: Any = None
) -> list[str]:
    """Upload the exported directory ``src`` to ``dest``; return the keys written, in order.

    A ``dest`` that already holds objects is refused with ``FileExistsError`` unless
    ``overwrite``. Replacing follows the local export's rule that a version directory without
    ``lineage.json`` is incomplete: the old ``lineage.json`` is deleted first and the new one is
    written last, so a storage initializer that copies in between gets a directory the predictor
    refuses rather than a mix of two versions; objects of the old version the new one lacks are
    deleted at the end. ``client`` is a boto3 S3 client (default: one from the environment).
    """
    files = {path.relative_to(src).as_posix(): path for path in src.rglob("*") if path.is_file()}
    if LINEAGE_FILE not in files:
        raise RegistryError(f"{src} has no {LINEAGE_FILE}: it is not an exported version")
    empty = sorted(rel for rel, path in files.items() if path.stat().st_size == 0)
    if empty:
        raise RegistryError(
            f"{src} holds empty files ({', '.join(empty)}): KServe's storage initializer skips "
            "empty objects, so the predictor would not get them"
        )
    s3 = client if client is not None else boto3.client("s3")
    try:
        existing = _keys(s3, dest)
        if existing and not overwrite:
            raise FileExistsError(f"{dest} is not empty; pass overwrite=True to replace it")
        lineage_key = dest.key(LINEAGE_FILE)
        if lineage_key in existing:
            s3.delete_object(Bucket=dest.bucket, Key=lineage_key)
        order = sorted(files, key=lambda rel: (rel == LINEAGE_FILE, rel))
        written = []
        for rel in order:
            s3.upload_file(str(files[rel]), dest.bucket, dest.key(rel))
            written.append(dest.key(rel))
        _delete(s3, dest.bucket, sorted(existing - set(written)))
    except (ClientError, BotoCoreError) as e:
        raise RegistryError(f"cannot upload to {dest}: {e}") from e
    return written


def _keys(s3: Any, dest: S3Prefix) -> set[str]:
    """Every key under ``<prefix>/``."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=dest.bucket, Prefix=dest.key(""))
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _delete(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            failed = ", ".join(f"{e['Key']}: {e.get('Code')}" for e in answer["Errors"])
            raise RegistryError(f"cannot delete stale objects in s3://{bucket}: {failed}")
