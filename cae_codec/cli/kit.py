"""What every caec subcommand shares: one error and exit path, standard streams, output
naming, safe writes, per-file batches and signals.

Conventions (those of cjpeg, cwebp and cjxl): diagnostics and progress go to stderr, data to
stdout or files; every failure is one ``caec: error: ...`` line. Exit status 0 success, 1 a
file failed, 2 usage error, 128 + N killed by signal N (130 SIGINT, 129 SIGHUP, 143 SIGTERM,
141 a closed output pipe).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

import typer
from typer._click import exceptions as click_exceptions
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from cae_codec.errors import CaecError
from cae_codec.fsutil import atomic_write

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process killed by SIGPIPE
# help on -h as well as --help, in every subcommand
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def fail(msg: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print one error line and return the exit to raise (``raise fail(...) from None``)."""
    typer.echo(f"caec: error: {msg}", err=True)
    return typer.Exit(code)


def warn(msg: str) -> None:
    typer.echo(f"caec: warning: {msg}", err=True)


class CaecGroup(TyperGroup):
    """The ``caec`` command group, printing usage errors as every other error: one
    ``caec: error:`` line (plus where to find help) and exit status 2, in every subcommand."""

    # Subcommands whose module is imported only when one of them runs or help lists them:
    # name -> (module, function, CommandInfo settings). A process runs one command, and the
    # modules of the others (rich's tables, the web server's, comcnn's) took ~0.05 s of the
    # start-up of `caec info` (docs/benchmark.md).
    lazy_commands: ClassVar[dict[str, tuple[str, str, dict[str, Any]]]] = {}

    def get_params(self, ctx: Any) -> list[Any]:
        return _with_plain_coercion(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            module, function, settings = self.lazy_commands[cmd_name]
            info = typer.models.CommandInfo(
                name=cmd_name,
                cls=CaecCommand,
                callback=getattr(importlib.import_module(module), function),
                **settings,
            )
            command = self.commands[cmd_name] = typer.main.get_command_from_info(
                info, pretty_exceptions_short=True, rich_markup_mode=self.rich_markup_mode
            )
        return command

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in self.lazy_commands if name not in self.commands)]

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        standalone = extra.pop("standalone_mode", True)
        try:
            rv = super().main(args=args, prog_name=prog_name or "caec", standalone_mode=False, **extra)
            # without standalone mode an Exit comes back as its code, a finished command as None
            code = rv if isinstance(rv, int) else EXIT_OK
            if code == 130:  # Typer turns KeyboardInterrupt into Exit(130) without a word
                typer.echo("caec: interrupted", err=True)
        except click_exceptions.NoArgsIsHelpError as e:
            e.show()
            code = e.exit_code
        except click_exceptions.UsageError as e:
            typer.echo(f"caec: error: {_usage_message(e)}", err=True)
            if e.ctx is not None:
                typer.echo(f"Try '{e.ctx.command_path} -h' for help.", err=True)
            code = e.exit_code
        except click_exceptions.ClickException as e:
            typer.echo(f"caec: error: {e.format_message()}", err=True)
            code = EXIT_FAILED
        except typer.Abort:
            typer.echo("caec: interrupted", err=True)
            code = 130
        if not standalone:
            return code
        sys.exit(code)


def _usage_message(e: click_exceptions.UsageError) -> str:
    msg = e.format_message()
    # "Invalid value for '--bpp': --bpp must be ..." says the option twice
    if isinstance(e, click_exceptions.BadParameter) and e.param is None and e.param_hint is None:
        msg = msg.removeprefix("Invalid value: ")
    return msg


# Typer's plain help names types the Python way (`<int range>`, `<list[str]>`, `{inputs}...`);
# caec's help names them as other command-line tools do (N, PATH, IMAGE...)
_TYPE_WORDS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "path": "PATH", "bool": "BOOLEAN"}


def _type_word(label: str) -> str:
    inner = label.strip("<>").removesuffix(" range")
    if inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]
    return _TYPE_WORDS.get(inner.lower(), inner.upper())


# Typer coerces every value through a pydantic TypeAdapter: importing pydantic and building the
# adapters took ~0.1 s of the 0.36 s of `caec info`, which a script calling caec once per file
# pays every time (docs/benchmark.md). The values of caec's options are mostly text, whole or
# decimal numbers, and lists of text, whose coercion is the identity or int()/float(); those are
# done here, and anything else (a choice, a parser, an out-of-range number, another spelling of a
# number) goes to Typer's own coercion, which gives its errors (tests/test_cli_coercion.py checks that
# both agree).
_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_NOT_PLAIN = object()


def plain_value(descriptor: TypeDescriptor, value: Any) -> Any:
    """``value`` coerced to the parameter's type where that needs no more than ``str``, ``int``
    or ``float``, else ``_NOT_PLAIN``."""
    info = descriptor.parameter_info
    if info.parser is not None or descriptor.is_choice or descriptor.is_file:
        return _NOT_PLAIN
    annotation = descriptor.annotation
    if annotation is str:
        return value if isinstance(value, str) else _NOT_PLAIN
    if annotation == list[str]:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return list(value) if ok else _NOT_PLAIN
    if annotation not in (int, float) or info.clamp:
        return _NOT_PLAIN
    if isinstance(value, str):
        if not (_INT if annotation is int else _DECIMAL).fullmatch(value):
            return _NOT_PLAIN
    elif isinstance(value, bool) or not isinstance(value, (int, float) if annotation is float else int):
        return _NOT_PLAIN
    number = annotation(value)
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        return _NOT_PLAIN  # Typer's coercion says what the range is
    return number


@dataclass(frozen=True)
class _PlainRuntimeParam(RuntimeParam):
    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        plain = plain_value(self.descriptor, value)
        if plain is not _NOT_PLAIN:
            return plain
        return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def _with_plain_coercion(params: list[Any]) -> list[Any]:
    """``params`` (a command's, its help option included), each coerced as above."""
    for param in params:
        if isinstance(param, (TyperArgument, TyperOption)) and not isinstance(param._runtime_param, _PlainRuntimeParam):
            descriptor = param.type_descriptor
            param._runtime_param = _PlainRuntimeParam(descriptor.parameter_info, descriptor.annotation, descriptor)
    return params


class _PlainArgument(TyperArgument):
    def _display_name(self) -> str:
        return self.metavar or (self.name or "").upper() + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        return self._display_name() if self.required else f"[{self._display_name()}]"

    def _rich_display_name(self) -> str:
        return self._display_name()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _PlainOption(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        return self.metavar or _type_word(self.display_type(ctx))


class CaecCommand(TyperCommand):
    """A caec subcommand: its help written as other command-line tools write theirs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _PlainArgument
            elif type(param) is TyperOption:
                param.__class__ = _PlainOption

    def get_params(self, ctx: Any) -> list[Any]:
        return _with_plain_coercion(super().get_params(ctx))


def use_plain_help(app: typer.Typer) -> None:
    """Every command registered on ``app`` so far gets caec's help style."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = CaecCommand


# ---------------------------------------------------------------- standard streams
def stdin_binary(label: str = "<stdin>") -> BinaryIO:
    """Standard input as bytes, or one error line when the process was started without it
    (``<&-``: Python then sets sys.stdin to None)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise CaecError(f"{label}: standard input is closed")
    return stream  # type: ignore[no-any-return]


def stdout_binary() -> BinaryIO:
    """Standard output for binary data: refused when closed (``>&-``) or a terminal."""
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        raise CaecError("standard output is closed")
    if stream.isatty():
        raise CaecError("refusing to write binary data to a terminal (redirect it, or give -o FILE)")
    return stream  # type: ignore[no-any-return]


def read_stdin(label: str = "<stdin>") -> bytes:
    try:
        return stdin_binary(label).read()
    except OSError as e:
        raise CaecError(f"{label}: {e.strerror or e}") from None


# ---------------------------------------------------------------- outputs
@dataclass(frozen=True)
class Job:
    """One input and where its output goes (``-``: stdout)."""

    src: str
    dst: str


def plan_outputs(inputs: Sequence[str], output: str | None, name_output: Callable[[str], Path]) -> list[Job]:
    """The output of every input: ``name_output(src)`` by default, inside ``output`` when it is
    a directory (an existing one, or a name ending in ``/``, created when the first file is
    written), ``output`` itself for one input. Several inputs need a directory, or nothing."""
    if output == "-":
        if len(inputs) != 1:
            raise typer.BadParameter("'-o -' (stdout) takes exactly one input", param_hint="'-o'")
        return [Job(inputs[0], "-")]
    as_dir = output is not None and (output.endswith(("/", os.sep)) or Path(output).is_dir())
    if len(inputs) > 1 and output is not None and not as_dir:
        raise typer.BadParameter(
            f"several inputs need -o to be a directory (an existing one, or a name ending in '/'), not {output!r}",
            param_hint="'-o'",
        )
    if "-" in inputs and len(inputs) > 1:
        raise typer.BadParameter("'-' (stdin) cannot be mixed with other inputs")
    if output is not None and not as_dir:
        return [Job(inputs[0], output)]
    if inputs[0] == "-":
        if output is not None:
            raise typer.BadParameter("stdin has no name to name a file in a directory after; give -o FILE")
        return [Job("-", "-")]
    jobs = []
    for src in inputs:
        if not Path(src).name:  # '.', '/': nothing to name an output after
            raise typer.BadParameter(f"{src!r} has no file name to name the output after; give -o")
        target = name_output(src)
        jobs.append(Job(src, str(Path(output) / target.name) if output is not None else str(target)))
    if len({j.dst for j in jobs}) != len(jobs):
        raise typer.BadParameter("two inputs would write the same output file")
    return jobs


def same_file(a: str, b: str) -> bool:
    """True when two names reach one file (the same name, a symlink or a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be looked at)
        return Path(a).resolve() == Path(b).resolve()


def check_output(job: Job, inputs: Sequence[str], force: bool) -> None:
    """Before any work on ``job``: never an input as its output, never an existing file without ``force``."""
    if job.dst == "-":
        return
    for src in inputs:
        if src != "-" and same_file(src, job.dst):
            raise CaecError(f"{job.dst} is the input file {src}; refusing to overwrite an input")
    if not force and (os.path.lexists(job.dst)):
        raise CaecError(f"{job.dst} exists (use --force to overwrite, or --skip-existing)")


def emit(dst: str, data: bytes, force: bool, inputs: Sequence[str] = ()) -> None:
    """Write ``data`` to ``dst`` (``-``: stdout) whole or not at all, creating a missing
    output folder; the input check runs again right before the write, so an input that
    appeared under the output's name meanwhile is still never touched."""
    if dst == "-":
        stream = stdout_binary()
        stream.write(data)
        stream.flush()
        return
    check_output(Job("", dst), inputs, force=True)
    path = Path(dst)
    if str(path.parent) and not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CaecError(f"cannot create the folder {path.parent}: {e.strerror or e}") from None
    atomic_write(path, data, force=force)


# ---------------------------------------------------------------- batches
@dataclass(frozen=True)
class Verbosity:
    quiet: bool = False
    verbose: bool = False


class FileProgress:
    """The progress of the file being worked on, as a bar on a terminal (nothing otherwise):
    ``total(n)`` once the work is counted (until then the bar only shows it is alive and the
    time spent), then ``advance(k)`` as parts are done."""

    def __init__(self, bar: Progress | _NoBar, task: TaskID) -> None:
        self._bar = bar
        self._task = task

    def total(self, n: int) -> None:
        self._bar.update(self._task, total=n, completed=0)

    def advance(self, k: int) -> None:
        self._bar.advance(self._task, k)


class _NoBar:
    """What run_batch's bar does where stderr is no terminal (a script, a pipe, a log): nothing,
    as rich's disabled bar would, without importing rich (~0.02 s of a process's start-up)."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        return 0  # type: ignore[return-value]  # TaskID is an int

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def advance(self, *args: Any, **kwargs: Any) -> None:
        return None

    def remove_task(self, *args: Any, **kwargs: Any) -> None:
        return None


def run_batch(
    jobs: Sequence[Job],
    work: Callable[[Job, FileProgress], str],
    what: str,
    force: bool = False,
    skip_existing: bool = False,
    verbosity: Verbosity = Verbosity(),
) -> None:
    """Run ``work(job, progress)`` per file; a failure is reported and the rest still run.
    Outputs are checked before the work (an existing one fails or, with ``skip_existing``,
    is skipped). On a terminal a bar shows each file's progress (and the batch's)."""
    bar: Progress | _NoBar = _NoBar()
    if sys.stderr is not None and sys.stderr.isatty():  # progress_bar's own test: a bar only there
        from cae_codec.progress import progress_bar

        bar = progress_bar()
    inputs = [j.src for j in jobs]
    failed: list[str] = []
    skipped = 0
    with bar:
        overall = bar.add_task(what, total=len(jobs), visible=len(jobs) > 1)
        for job in jobs:
            current = bar.add_task(f"{what} {'<stdin>' if job.src == '-' else Path(job.src).name}", total=None)
            try:
                if skip_existing and job.dst != "-" and os.path.lexists(job.dst):
                    check_output(job, inputs, force=True)  # an input is still never an output
                    skipped += 1
                    if verbosity.verbose:
                        typer.echo(f"{job.src} -> {job.dst}: skipped, exists", err=True)
                else:
                    check_output(job, inputs, force)
                    note = work(job, FileProgress(bar, current))
                    if not verbosity.quiet and (len(jobs) > 1 or job.dst != "-"):
                        typer.echo(f"{job.src} -> {job.dst}: {note}", err=True)
            except CaecError as e:
                failed.append(job.src)
                typer.echo(f"caec: error: {e}", err=True)
            bar.remove_task(current)
            bar.advance(overall)
    if skipped and not verbosity.quiet:
        typer.echo(f"caec: {skipped} of {len(jobs)} outputs existed and were skipped", err=True)
    if failed:
        if len(jobs) > 1:
            typer.echo(f"caec: {len(failed)} of {len(jobs)} files failed: {', '.join(failed)}", err=True)
        raise typer.Exit(EXIT_FAILED)


# ---------------------------------------------------------------- signals
def _terminated(signum: int, frame: object) -> None:
    # Raised in the main thread, so every finally block on the stack (the temporary file of
    # an output being written) runs on the way out instead of the process just vanishing.
    name = signal.Signals(signum).name
    with contextlib.suppress(OSError):  # SIGHUP: the terminal that would show it may be gone
        typer.echo(f"caec: terminated by {name}", err=True)
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminated)


def run_app(app: typer.Typer) -> None:
    """The process entry: signals, interrupts and a closed output pipe end in their exit codes."""
    install_signal_handlers()
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("caec: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # the reader went away (`caec decode x.cae -o - | head -c 10`): stop quietly, as a
        # process killed by SIGPIPE would, and keep Python from complaining at its final flush
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
