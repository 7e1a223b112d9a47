"""A real S3 API on 127.0.0.1 (moto's server) and what KServe's storage initializer does with it.

``copy_prefix`` follows ``kserve_storage`` 0.21.0, ``Storage._download_s3``, the code the
storage-initializer image runs for an ``s3://`` storageUri: list the objects whose key begins
with the URI's path, skip keys ending in ``/`` and empty objects, and write each under the output
directory at the key with the path (and the ``/`` after it) removed; an object whose key is the
path itself is written under its last segment. The package is not installed here: it pulls in the
clients of every other store KServe supports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "loopline-test",
    "AWS_SECRET_ACCESS_KEY": "loopline-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never ask an instance metadata service for credentials: nothing but 127.0.0.1 is reached.
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_env(endpoint: str | None, **overrides: str) -> dict[str, str]:
    """This process's environment with no AWS settings of its own, then the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CREDENTIALS, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(overrides)
    return env


def client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )


def copy_prefix(s3: Any, uri: str, out_dir: Path) -> Path:
    """Copy ``uri`` (s3://bucket/path) into ``out_dir`` as the storage initializer does."""
    parsed = urlparse(uri)
    bucket, path = parsed.netloc, parsed.path.lstrip("/")
    s3.head_bucket(Bucket=bucket)
    copied = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=path):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/") or obj["Size"] == 0:
                continue
            exact = key == path
            target = out_dir / (
                key.rsplit("/", 1)[-1] if exact else key.removeprefix(path).lstrip("/")
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            copied += 1
            if exact:
                break
    assert copied, f"Failed to fetch model. No model found in {path}."
    return out_dir
