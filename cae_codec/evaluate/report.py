"""From per-image points to curves, BD-rate tables, terminal tables and the results page."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from cae_codec.evaluate.bdrate import BDRateError, bd_rate
from cae_codec.evaluate.curves import RDCurve
from cae_codec.evaluate.metrics import ms_ssim_db
from cae_codec.evaluate.runner import Point


def replace_marked(text: str, start: str, end: str, body: str) -> str:
    """``text`` with everything from the ``start`` marker to the ``end`` marker replaced by
    ``body`` between them: generated tables inside hand-written pages."""
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"has no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def rewrite_marked(path: Path, start: str, end: str, body: str) -> None:
    """:func:`replace_marked` on a file, for the bench scripts: a missing file or missing markers
    end the script with one line naming the file (SystemExit), never a traceback."""
    try:
        text = replace_marked(path.read_text(), start, end, body)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: {e}") from None
    path.write_text(text)


def average_curve(
    name: str, description: str, points: Sequence[Point], targets: Sequence[float], meta: dict[str, Any]
) -> tuple[RDCurve | None, list[str]]:
    """Per-target means over images; a target is left out (and said so) unless every image reached it."""
    curve = RDCurve(name=name, description=description, bpp=[], psnr=[], meta=dict(meta))
    notes: list[str] = []
    kept: list[float] = []
    for t in targets:
        at = [p for p in points if p.target_bpp == t]
        bad = [p for p in at if not p.ok]
        if bad or not at:
            why = bad[0].note if bad else "no images"
            notes.append(
                f"{name}: {t:g} bpp left out, {len(bad)} of {len(at)} images not coded ({bad[0].image}: {why})"
            )
            continue
        kept.append(t)
        curve.bpp.append(float(np.mean([p.bpp for p in at])))
        curve.psnr.append(float(np.mean([p.psnr for p in at])))
        # one image without MS-SSIM (too small) makes the mean undefined, not the mean of the others
        curve.ms_ssim.append(float(np.mean([p.ms_ssim for p in at])))
        curve.encoding_time.append(float(np.mean([p.encoding_time for p in at])))
        curve.decoding_time.append(float(np.mean([p.decoding_time for p in at])))
    curve.meta["target_bpp"] = kept
    if notes:
        curve.meta["left_out"] = notes
    return (curve if kept else None), notes


@dataclass
class BDRow:
    name: str
    source: str  # "measured", "published" or "anchor"
    psnr: float | None
    ms_ssim: float | None
    notes: list[str]


def _bd(anchor_bpp: list[float], anchor_q: list[float], bpp: list[float], q: list[float]) -> tuple[float | None, str]:
    try:
        return bd_rate(anchor_bpp, anchor_q, bpp, q), ""
    except BDRateError as e:
        return None, str(e)


def bd_rate_text(
    anchor_rate: Sequence[float], anchor_q: Sequence[float], rate: Sequence[float], q: Sequence[float]
) -> str:
    """BD-rate as a table cell (two decimals), or 'n/a (why)' when the curves cannot be compared
    (e.g. MS-SSIM, which has no value on photos under 161 pixels a side)."""
    value, why = _bd(list(anchor_rate), list(anchor_q), list(rate), list(q))
    return f"n/a ({why})" if value is None else f"{value:+.2f}%"


def bd_rows(anchor: RDCurve, measured: Sequence[RDCurve], references: Sequence[RDCurve]) -> list[BDRow]:
    """BD-rate of every curve against the anchor, in PSNR-RGB and in MS-SSIM-RGB (dB)."""

    def ms_db(c: RDCurve) -> list[float]:
        return [ms_ssim_db(v) if math.isfinite(v) else math.nan for v in c.ms_ssim]

    rows = []
    for source, curves in (("measured", measured), ("published", references)):
        for c in curves:
            notes = []
            if c is anchor:
                rows.append(BDRow(c.name, "anchor", 0.0, 0.0 if c.has_ms_ssim else None, []))
                continue
            psnr, why = _bd(anchor.bpp, anchor.psnr, c.bpp, c.psnr)
            if why:
                notes.append(f"PSNR: {why}")
            ms: float | None = None
            if c.has_ms_ssim and anchor.has_ms_ssim:
                ms, why = _bd(anchor.bpp, ms_db(anchor), c.bpp, ms_db(c))
                if why:
                    notes.append(f"MS-SSIM: {why}")
            else:
                notes.append("MS-SSIM: no values")
            rows.append(BDRow(c.name, source, psnr, ms, notes))
    return rows


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.1f}%"


def _f(v: float, fmt: str) -> str:
    return format(v, fmt) if math.isfinite(v) else "n/a"


def bd_table(rows: Sequence[BDRow], anchor: str, metrics: Sequence[str]) -> Table:
    table = Table(title=f"BD-rate against {anchor} (negative: fewer bits for the same quality)")
    table.add_column("codec")
    table.add_column("curve")
    if "psnr" in metrics:
        table.add_column("PSNR-RGB", justify="right")
    if "ms-ssim" in metrics:
        table.add_column("MS-SSIM-RGB", justify="right")
    for r in rows:
        cells = [r.name, r.source]
        if "psnr" in metrics:
            cells.append(_pct(r.psnr))
        if "ms-ssim" in metrics:
            cells.append(_pct(r.ms_ssim))
        table.add_row(*cells)
    return table


def points_table(points: Sequence[Point], labels: dict[str, str], title: str) -> Table:
    table = Table(title=title)
    for col, just in (
        ("image", "left"),
        ("target", "right"),
        ("codec", "left"),
        ("bpp", "right"),
        ("PSNR", "right"),
        ("MS-SSIM", "right"),
        ("enc ms", "right"),
        ("dec ms", "right"),
        ("knob", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    last = None
    for p in points:
        key = (p.image, p.target_bpp)
        if last is not None and key != last:
            table.add_section()
        last = key
        if p.ok:
            table.add_row(
                p.image,
                f"{p.target_bpp:g}",
                labels.get(p.codec, p.codec),
                f"{p.bpp:.4f}",
                _f(p.psnr, ".2f"),
                _f(p.ms_ssim, ".4f"),
                f"{1000 * p.encoding_time:.1f}",
                f"{1000 * p.decoding_time:.1f}",
                f"{p.knob:.4g}",
            )
        else:
            table.add_row(p.image, f"{p.target_bpp:g}", labels.get(p.codec, p.codec), f"[yellow]{p.note}[/]")
    return table


def curve_table(curve: RDCurve) -> list[str]:
    """Markdown rows: the per-target averages of one measured curve."""
    lines = [
        "| target bpp | bpp | PSNR-RGB (dB) | MS-SSIM-RGB | encode (s) | decode (s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    targets = curve.meta.get("target_bpp", [math.nan] * len(curve.bpp))
    for i, t in enumerate(targets):
        lines.append(
            f"| {t:g} | {curve.bpp[i]:.4f} | {_f(curve.psnr[i], '.2f')} | {_f(curve.ms_ssim[i], '.4f')} "
            f"| {_f(curve.encoding_time[i], '.3f')} | {_f(curve.decoding_time[i], '.3f')} |"
        )
    return lines


def results_markdown(
    *,
    dataset: str,
    images: int,
    anchor: str,
    rows: Sequence[BDRow],
    measured: Sequence[RDCurve],
    references: Sequence[RDCurve],
    versions: dict[str, dict[str, Any]],
    run: dict[str, Any],
    plot_path: str | None,
    notes: Sequence[str],
) -> str:
    """The results page: headline BD-rates, the table, the plot, per-rate averages, provenance."""
    out = [
        f"# Results on {dataset}",
        "",
        f"Generated by `{run['command']}`; do not edit by hand, regenerate it (`make results`).",
        "Metric definitions and the rate search: [evaluation.md](evaluation.md).",
        "",
    ]
    caec_row = next((r for r in rows if r.name == "caec" and r.source == "measured"), None)
    if caec_row is not None:
        out += [
            f"**BD-rate of caec against {anchor}: {_pct(caec_row.psnr)} (PSNR-RGB), "
            f"{_pct(caec_row.ms_ssim)} (MS-SSIM-RGB)** over {images} images; negative means fewer bits "
            "for the same quality.",
            "",
        ]
    out += [
        f"## BD-rate against {anchor}",
        "",
        "| codec | curve | BD-rate PSNR-RGB | BD-rate MS-SSIM-RGB | remarks |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        out.append(f"| {r.name} | {r.source} | {_pct(r.psnr)} | {_pct(r.ms_ssim)} | {'; '.join(r.notes)} |")
    out += [
        "",
        "Measured curves were produced in this run on this machine; published curves come from the files",
        "listed under Provenance and were measured elsewhere (CompressAI's own runs).",
        "",
    ]
    if plot_path:
        out += ["## Rate-distortion curves", "", f"![RD curves on {dataset}]({plot_path})", ""]
    out += ["## Averages per target rate", ""]
    for c in measured:
        out += [f"### {c.name}", "", *curve_table(c), ""]
    if notes:
        out += ["## Points left out", "", *[f"- {n}" for n in notes], ""]
    load = f"; {run['load']}" if run.get("load") else ""
    out += ["## Provenance", "", f"- caec {run['caec']}, Python {run['python']}, {run['machine']}{load}"]
    out.append(
        f"- {images} images from {run['dataset_root']}; target rates {', '.join(f'{t:g}' for t in run['targets'])} bpp"
    )
    out.append(
        f"- workers: {run['jobs']} processes, one thread each; times are per image; caec's encode counts its "
        "whole rate search, as `caec encode --bpp` runs it, the others' one encode at the setting found"
    )
    for name, v in versions.items():
        extra = ", ".join(f"{k} {val}" for k, val in v.get("settings", {}).items())
        model = f", model {v['model']} (weights {v['weights_hash'][:12]})" if "model" in v else ""
        out.append(f"- {name}: {v['version']}{model}; knob: {v['knob']}; {extra}")
    for c in references:
        out.append(f"- published: {c.name} ({c.description}) from `{c.meta.get('source', '?')}`")
    out.append("")
    return "\n".join(out)
