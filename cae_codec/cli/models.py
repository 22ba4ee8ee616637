"""`caec models`: the models and model families by name, or with --codecs the registry."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cae_codec import registry
from cae_codec.api import DEFAULT_MODEL, list_models
from cae_codec.registry import DEFAULT_CODEC


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    retired: Annotated[bool, typer.Option("--retired", help="List the retired models too.")] = False,
    codecs: Annotated[bool, typer.Option("--codecs", help="List the codecs instead (--codec of encode).")] = False,
) -> None:
    """List the models and model families that --model accepts by name ($CAEC_MODELS and the
    shipped ones), or with --codecs the codecs."""
    if codecs:
        _list_codecs(as_json)
        return
    entries = list_models(retired)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table(box=None)
    for column in ("name", "codec", "kind", "what", "weights hash"):
        table.add_column(column, style="bold" if column == "name" else None)
    for e in entries:
        if "error" in e:
            what, digest = f"[red]{e['error']}[/red]", ""
        elif e["kind"] == "family":
            what, digest = " + ".join(m["model"] for m in e["members"]), ""
        elif e["kind"] == "retired":
            what = f"retired in caec {e['retired_in']}, superseded by {e['superseded_by']}"
            digest = e["weights_hash"][:12]
        elif "latent" not in e["config"]:  # another codec's network: its configuration as it is
            what = f"{e['architecture']} " + ", ".join(f"{k} {v}" for k, v in e["config"].items())
            digest = (e["weights_hash"] or "")[:12]
        else:
            cfg = e["config"]
            bands = len(cfg.get("decoder_bands", [])) + 1
            decoder = f", decoder {cfg['decoder_hidden']}" if cfg.get("decoder_hidden") is not None else ""
            what = f"{e['architecture']} {cfg.get('hidden')}/{cfg.get('latent')}{decoder}" + (
                f", {bands} decoders" if bands > 1 else ""
            )
            digest = (e["weights_hash"] or "")[:12]  # as error messages show it; --json has all
        name = f"{e['name']} (default)" if e["name"] == DEFAULT_MODEL else e["name"]
        table.add_row(name, e.get("codec") or "", e["kind"], what, digest)
    Console().print(table)


def _list_codecs(as_json: bool) -> None:
    """The registry, as `caec models --codecs` shows it (no codec is imported to list them)."""
    entries: list[dict[str, Any]] = [
        {
            "id": info.id,
            "label": info.label,
            "paper": info.paper,
            "summary": info.summary,
            "quality": {"min": info.quality.lo, "max": info.quality.hi, "default": info.quality.default},
            "capabilities": dataclasses.asdict(info.capabilities),
            "default_model": info.default_model,
            "default": info.id == DEFAULT_CODEC,
        }
        for info in registry.CODECS.values()
    ]
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table(box=None)
    for column in ("codec", "paper", "quality", "default model", "capabilities"):
        table.add_column(column, style="bold" if column == "codec" else None)
    for e in entries:
        caps = e["capabilities"]
        shown = [k.replace("_", " ") for k, v in caps.items() if v is True and k != "learned"]
        if caps["fixed_size"]:
            shown.append("{}x{} only".format(*caps["fixed_size"]))
        q = e["quality"]
        table.add_row(
            f"{e['id']} (default)" if e["default"] else e["id"],
            e["paper"].split(",")[0],  # the citation; --json has the title
            f"{q['min']}..{q['max']} ({q['default']})",
            e["default_model"] or "",
            ", ".join(shown) or "-",
        )
    Console().print(table)
