"""``caec compare`` and ``caec bdrate``, commands of the main app (imported when run: cae_codec.cli).

Same conventions as cae_codec.cli: diagnostics and progress on stderr, data (``--json``) on
stdout, every failure one ``caec: error: ...`` line, exit 1 for failures and 2 for bad usage.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from cae_codec import __version__
from cae_codec.api import DEFAULT_MODEL
from cae_codec.cli.kit import EXIT_USAGE
from cae_codec.cli.kit import fail as _fail
from cae_codec.cli.kit import warn as _warn
from cae_codec.errors import CaecError
from cae_codec.fsutil import atomic_write
from cae_codec.progress import progress_bar
from cae_codec.stages.quant import REFINE_MAX

if TYPE_CHECKING:
    from cae_codec.evaluate.runner import Point, Task

DEFAULT_CODECS = "caec,jpeg,jpeg2000,webp,avif,jpegxl"
DEFAULT_COMPARE_BPP = "0.25,0.5,1.0"
DEFAULT_SWEEP = "0.125,0.25,0.375,0.5,0.75,1.0,1.5,2.0"
METRICS = {"psnr": ["psnr"], "ms-ssim": ["ms-ssim"], "both": ["psnr", "ms-ssim"]}


def parse_rates(text: str, option: str) -> list[float]:
    """'0.25,0.5' -> [0.25, 0.5]: ascending, distinct, each in (0, 64)."""
    try:
        rates = sorted({float(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise _fail(f"{option} takes comma-separated numbers, e.g. 0.25,0.5,1.0 (got {text!r})", EXIT_USAGE) from None
    if not rates:
        raise _fail(f"{option} is empty", EXIT_USAGE)
    if not all(0 < r < 64 for r in rates):
        raise _fail(f"{option}: every rate must be in (0, 64) bpp (got {text!r})", EXIT_USAGE)
    return rates


def parse_codecs(text: str, extra: Sequence[str] = ()) -> list[str]:
    """Known, available codec names in the order given (plus ``extra``); unavailable ones are warned about."""
    from cae_codec.evaluate.runner import CODEC_NAMES, learned_id, split_model, unavailable_reason

    names: list[str] = []
    for raw in [*text.split(","), *extra]:
        name = raw.strip()
        base, model = split_model(name)
        name = base.lower() + ("" if model is None else f"@{model}")
        if not name or name in names:
            continue
        if base.lower() not in CODEC_NAMES:
            raise _fail(f"unknown codec {base!r} (known: {', '.join(CODEC_NAMES)})", EXIT_USAGE)
        if model is not None and (learned_id(base.lower()) is None or not model or "/" in model or "\\" in model):
            # the name names result files: a model by its name ($CAEC_MODELS, then the shipped ones), not a path
            raise _fail(f"{name}: CODEC@MODEL takes a learned codec and a model name, not a path", EXIT_USAGE)
        names.append(name)
    available = []
    for name in names:
        why = unavailable_reason(name)
        if why:
            _warn(f"{why}; skipped")
        else:
            available.append(name)
    if not available:
        raise _fail("none of the codecs asked for can run here")
    return available


def _describe_all(names: Sequence[str], model: str, device: str, refine: int = 0) -> dict[str, dict[str, Any]]:
    """Library versions and settings; loads caec's model here, so a bad --model fails before any work."""
    from cae_codec.evaluate.runner import make_codec

    return {name: make_codec(name, model, device, refine).describe() for name in names}


def _check_outputs(paths: Sequence[Path], force: bool) -> None:
    if force:
        return
    clash = [p for p in paths if p.exists()]
    if clash:
        more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
        raise _fail(f"{clash[0]} exists{more} (use --force to overwrite)")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, force=True)  # clashes were refused before any work started


def _run(tasks: list[Task], jobs: int) -> list[list[Point]]:
    from cae_codec.evaluate.runner import run_tasks

    points = sum(len(t.targets) for t in tasks)
    with progress_bar() as bar:
        task_id = bar.add_task("images x codecs x rates", total=points)
        return run_tasks(tasks, jobs, lambda t: bar.advance(task_id, len(t.targets)))


def _jobs(jobs: int | None, tasks: int) -> int:
    if jobs is not None and jobs < 1:
        raise _fail("--jobs must be at least 1", EXIT_USAGE)
    return max(1, min(jobs or os.cpu_count() or 1, tasks))


def _load() -> float:
    """The 1-minute load average (0 where the system does not tell)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


ModelOpt = Annotated[
    str,
    typer.Option("--model", "-m", help="caec model or family name ($CAEC_MODELS, then the shipped ones) or path."),
]
RefineOpt = Annotated[
    int,
    typer.Option(
        "--refine",
        min=0,
        max=REFINE_MAX,
        help="caec files refined by N gradient steps, as `caec encode --refine N` makes them (0: off).",
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="Device for caec: cpu (default, timings comparable) or cuda.")]
CodecsOpt = Annotated[
    str,
    typer.Option(
        "--codecs",
        help=f"Comma-separated codecs out of {DEFAULT_CODECS}; a learned codec with another model of its "
        "own: CODEC@MODEL (comcnn@comcnn-webp).",
    ),
]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes (default: one per core).")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]


def compare(
    images: Annotated[list[Path], typer.Argument(help="Images to compress (grey and alpha: evaluated on RGB).")],
    bpp: Annotated[str, typer.Option("--bpp", help="Target rates, comma-separated.")] = DEFAULT_COMPARE_BPP,
    codecs: CodecsOpt = DEFAULT_CODECS,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for files, reconstructions and crop sheets.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Results as JSON on stdout instead of the table.")] = False,
    model: ModelOpt = DEFAULT_MODEL,
    refine: RefineOpt = 0,
    device: DeviceOpt = "cpu",
    jobs: JobsOpt = None,
    force: ForceOpt = False,
) -> None:
    """Encode images with every codec at the largest size within each target rate; print bpp, PSNR, MS-SSIM, times."""
    from cae_codec.evaluate.metrics import as_rgb8
    from cae_codec.evaluate.report import points_table
    from cae_codec.evaluate.runner import Task, suffix_of
    from cae_codec.imageio import open_image

    targets = parse_rates(bpp, "--bpp")
    names = parse_codecs(codecs)
    stems = [p.stem for p in images]
    if len(set(stems)) != len(stems):
        raise _fail("two inputs have the same name; their outputs would collide", EXIT_USAGE)
    try:
        pictures = {p.stem: as_rgb8(open_image(p)) for p in images}
        versions = _describe_all(names, model, device, refine)
    except CaecError as e:
        raise _fail(str(e)) from None
    planned: list[Path] = []
    if out is not None:
        planned.append(out / "compare.json")
        for stem in stems:
            for t in targets:
                planned.append(out / stem / f"sheet_{t:g}bpp.png")
                for name in names:
                    suffix = suffix_of(name)
                    planned += [out / stem / f"{name}_{t:g}bpp.png", out / stem / f"{name}_{t:g}bpp{suffix}"]
        _check_outputs(planned, force)
    tasks = [
        Task(stem, pictures[stem], name, tuple(targets), model, device, keep=out is not None, refine=refine)
        for stem in stems
        for name in names
    ]
    t0 = time.perf_counter()
    try:
        results = _run(tasks, _jobs(jobs, len(tasks)))
    except CaecError as e:
        raise _fail(str(e)) from None
    # table order: image, then target, then codec as asked
    points = sorted(
        (p for pts in results for p in pts),
        key=lambda p: (stems.index(p.image), p.target_bpp, names.index(p.codec)),
    )
    report = {
        "caec": __version__,
        "machine": _machine(),
        "targets_bpp": targets,
        "images": [str(p) for p in images],
        "codecs": versions,
        "points": [p.summary() for p in points],
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if out is not None:
        _write_compare_outputs(out, points, pictures, names, versions, targets)
        _write(out / "compare.json", (json.dumps(report, indent=2) + "\n").encode())
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    labels = {n: v["codec"] for n, v in versions.items()}
    console = Console()
    console.print(points_table(points, labels, "caec compare (rates: 8 x file bytes / pixels)"))
    console.print("libraries: " + "; ".join(f"{v['codec']}: {v['version']}" for v in versions.values()))
    if out is not None:
        typer.echo(f"wrote reconstructions and crop sheets to {out}", err=True)


def _write_compare_outputs(
    out: Path,
    points: Sequence[Point],
    pictures: dict[str, Any],
    names: Sequence[str],
    versions: dict[str, dict[str, Any]],
    targets: Sequence[float],
) -> None:
    from cae_codec.evaluate.plot import crop_sheet
    from cae_codec.evaluate.runner import suffix_of
    from cae_codec.imageio import image_to_bytes

    for stem, original in pictures.items():
        for t in targets:
            panels = []
            for name in names:
                p = next(q for q in points if q.image == stem and q.codec == name and q.target_bpp == t)
                if p.data is None or p.recon is None:
                    continue
                _write(out / stem / f"{name}_{t:g}bpp{suffix_of(name)}", p.data)
                _write(out / stem / f"{name}_{t:g}bpp.png", image_to_bytes(p.recon))
                panels.append((f"{versions[name]['codec']} {p.bpp:.3f} bpp {p.psnr:.2f} dB", p.recon))
            _write(out / stem / f"sheet_{t:g}bpp.png", crop_sheet(original, panels))


def bdrate(
    dataset: Annotated[str, typer.Option("--dataset", help="'kodak' or a folder of images.")] = "kodak",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder holding kodak/ (or the Kodak images themselves).")
    ] = None,
    anchor: Annotated[str, typer.Option("--anchor", help="Codec the BD-rates are measured against.")] = "jpeg2000",
    codecs: CodecsOpt = DEFAULT_CODECS,
    metric: Annotated[str, typer.Option("--metric", help="psnr, ms-ssim or both.")] = "both",
    rates: Annotated[str, typer.Option("--rates", help="Target rates of the sweep, comma-separated.")] = DEFAULT_SWEEP,
    reference: Annotated[
        list[Path] | None, typer.Option("--reference", help="Published curve (CompressAI JSON); repeatable.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for per-codec JSON, points.json, bdrate.json, rd.png.")
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="RD plot PNG (default OUT/rd.png).")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Write a results page (Markdown).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N images.")] = None,
    model: ModelOpt = DEFAULT_MODEL,
    refine: RefineOpt = 0,
    device: DeviceOpt = "cpu",
    jobs: JobsOpt = None,
    force: ForceOpt = False,
) -> None:
    """Sweep every codec over target rates on a dataset; write CompressAI-style curves, an RD plot, BD-rates."""
    from cae_codec.evaluate.curves import RDCurve
    from cae_codec.evaluate.datasets import resolve_dataset
    from cae_codec.evaluate.metrics import as_rgb8
    from cae_codec.evaluate.plot import rd_plot_png
    from cae_codec.evaluate.report import average_curve, bd_rows, bd_table, results_markdown
    from cae_codec.evaluate.runner import Task
    from cae_codec.imageio import open_image

    targets = parse_rates(rates, "--rates")
    if metric not in METRICS:
        raise _fail(f"--metric must be psnr, ms-ssim or both (got {metric!r})", EXIT_USAGE)
    if limit is not None and limit < 1:
        raise _fail("--limit must be at least 1", EXIT_USAGE)
    anchor = anchor.strip().lower()
    names = parse_codecs(codecs, extra=[anchor])
    if anchor not in names:
        raise _fail(f"the anchor {anchor} cannot run here")
    plot = plot or (out / "rd.png" if out is not None else None)
    planned = [p for p in (plot, markdown) if p is not None]
    if out is not None:
        planned += [out / f"{n}.json" for n in names] + [out / "points.json", out / "bdrate.json"]
    _check_outputs(planned, force)
    try:
        refs = []
        for path in reference or []:
            ref = RDCurve.load(path)
            ref.meta["source"] = str(path)
            refs.append(ref)
        ds = resolve_dataset(dataset, data_dir, limit=limit)  # fetches only the images used
        paths = ds.images[:limit] if limit else ds.images
        versions = _describe_all(names, model, device, refine)
        pictures = [(p.stem, as_rgb8(open_image(p))) for p in paths]
    except CaecError as e:
        raise _fail(str(e)) from None
    tasks = [
        Task(stem, img, name, tuple(targets), model, device, refine=refine) for stem, img in pictures for name in names
    ]
    n_jobs = _jobs(jobs, len(pictures) * len(names))
    load_before = _load()
    t0 = time.perf_counter()
    try:
        results = _run(tasks, n_jobs)
    except CaecError as e:
        raise _fail(str(e)) from None
    seconds = time.perf_counter() - t0
    # times are only comparable on a quiet machine: the page says how busy this one was
    load = f"load average {load_before:.1f} before and {_load():.1f} after the run, {os.cpu_count()} cores"
    points = [p for pts in results for p in pts]

    measured: dict[str, RDCurve] = {}
    notes: list[str] = []
    for name in names:
        v = versions[name]
        weights = f", model {v['model']} (weights {v['weights_hash'][:12]})" if "model" in v else ""
        desc = f"{v['version']}{weights}, rate by bisection on {v['knob']}"
        meta = {"dataset": ds.name, "images": len(pictures), "codec": v}
        curve, left_out = average_curve(v["codec"], desc, [p for p in points if p.codec == name], targets, meta)
        notes += left_out
        if curve is not None:
            measured[name] = curve
    for n in notes:
        _warn(n)
    if anchor not in measured:
        raise _fail(f"the anchor {anchor} reached none of the target rates on every image")
    for ref in refs:
        # a published "JPEG2000" beside the measured one: tell them apart in the plot and tables
        if any(ref.name == c.name for c in measured.values()):
            ref.name = f"{ref.name} (published)"
    rows = bd_rows(measured[anchor], list(measured.values()), refs)
    run = {
        "command": _bdrate_command(dataset, data_dir, anchor, names, targets, refs, limit, model, refine),
        "caec": __version__,
        "python": platform.python_version(),
        "machine": _machine(),
        "dataset_root": str(ds.root),
        "targets": targets,
        "jobs": n_jobs,
        "seconds": round(seconds, 1),
        "load": load,
    }
    if out is not None:
        for name, curve in measured.items():
            _write(out / f"{name}.json", curve.dumps().encode())
        _write(out / "points.json", (json.dumps([p.summary() for p in points], indent=2) + "\n").encode())
        summary = {"anchor": anchor, "run": run, "bd_rate": [r.__dict__ for r in rows]}
        _write(out / "bdrate.json", (json.dumps(summary, indent=2) + "\n").encode())
    if plot is not None:
        _write(plot, rd_plot_png(list(measured.values()), refs, f"{ds.name}: {len(pictures)} images"))
    if markdown is not None:
        rel_plot = os.path.relpath(plot, markdown.parent) if plot is not None else None
        page = results_markdown(
            dataset=ds.name,
            images=len(pictures),
            anchor=versions[anchor]["codec"],
            rows=rows,
            measured=list(measured.values()),
            references=refs,
            versions=versions,
            run=run,
            plot_path=rel_plot,
            notes=notes,
        )
        _write(markdown, page.encode())
    Console().print(bd_table(rows, versions[anchor]["codec"], METRICS[metric]))
    typer.echo(f"{len(points)} points on {len(pictures)} image(s) in {seconds:.1f} s with {n_jobs} worker(s)", err=True)


def _bdrate_command(
    dataset: str,
    data_dir: Path | None,
    anchor: str,
    names: Sequence[str],
    targets: Sequence[float],
    refs: Sequence[Any],
    limit: int | None,
    model: str,
    refine: int = 0,
) -> str:
    """The command line that reproduces the run (without output paths), for the results page."""
    args = ["caec", "bdrate", "--dataset", dataset]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    args += ["--anchor", anchor, "--codecs", ",".join(names), "--rates", ",".join(f"{t:g}" for t in targets)]
    args += ["--model", model]
    if refine:
        args += ["--refine", str(refine)]
    if limit:
        args += ["--limit", str(limit)]
    for r in refs:
        args += ["--reference", r.meta["source"]]
    return shlex.join(args)
