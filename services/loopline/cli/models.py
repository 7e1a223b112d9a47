"""``loopline models``: the registry's versions, their lineage, and exports for serving
(registered on the ``loopline`` app in ``loopline.cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loopline.cli.common import JsonOption, settings_of
from loopline.console import out, print_json
from loopline.errors import RegistryError

models_app = typer.Typer(
    help="The model registry: versions, lineage, aliases.", no_args_is_help=True
)


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every registered version of every model."""
    from loopline.registry.store import ModelRegistry

    registry = ModelRegistry(settings_of(ctx).registry_dir)
    versions = [v for name in registry.models() for v in registry.versions(name)]
    rows = [v.to_summary() for v in versions]
    if as_json:
        print_json(rows)
        return
    table = Table("model", "version", "aliases", "created", "metric", "sha256")
    for version, row in zip(versions, rows, strict=True):
        value = row.get("metric_value")
        table.add_row(
            version.name,
            version.version,
            ", ".join(version.aliases),
            str(row["created_at"])[:19],
            f"{row['metric']} {value:.4f}" if isinstance(value, float) else "-",
            str(row["artifact_sha256"])[:12],
        )
    out.print(table)


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. flight-delay.")],
    version: Annotated[
        str, typer.Option(help="vN, N, latest, champion or challenger.")
    ] = "champion",
    as_json: JsonOption = False,
) -> None:
    """Lineage and holdout metrics of one version."""
    from loopline.registry.store import ModelRegistry

    found = ModelRegistry(settings_of(ctx).registry_dir).get(name, version)
    payload = {
        "name": found.name,
        "version": found.version,
        "aliases": list(found.aliases),
        "path": found.path,
        **found.lineage.model_dump(mode="json"),
    }
    if as_json:
        print_json(payload)
    else:
        out.print_json(data=payload, default=str)


@models_app.command("export")
def models_export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    destination: Annotated[
        str,
        typer.Argument(
            help="Directory to write (e.g. a PVC mount), or s3://bucket/prefix to upload to "
            "(credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_DEFAULT_REGION, AWS_ENDPOINT_URL).",
            show_default=False,
        ),
    ],
    version: Annotated[
        str, typer.Option(help="vN, N, latest, champion or challenger.")
    ] = "champion",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty destination.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a version as the plain directory a serving container loads (KServe's
    /mnt/models), into a directory or under an S3 prefix."""
    from loopline.registry.s3 import S3Prefix, export_to_s3, is_s3_uri
    from loopline.registry.store import ModelRegistry

    registry = ModelRegistry(settings_of(ctx).registry_dir)
    try:
        if is_s3_uri(destination):
            prefix = S3Prefix.parse(destination)
            export_to_s3(registry, name, version, prefix, overwrite=overwrite)
            where = str(prefix)
        else:
            where = str(registry.export(name, version, Path(destination), overwrite=overwrite))
    except FileExistsError:
        raise RegistryError(f"{destination} is not empty: pass --overwrite to replace it") from None
    if as_json:
        print_json({"name": name, "version": version, "path": where})
    else:
        out.print(f"exported {name} {version} to {where}")
