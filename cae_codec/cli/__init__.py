"""The `caec` command line, one module per concern: encode, decode and info (cli.coding),
models (cli.models), train (here: it hands a codec's arguments to the codec's own command),
compare and bdrate (cae_codec.evaluate.cli); the options they share (cli.options) and the
machinery (cli.kit: one error and exit path, outputs, batches, signals).

Diagnostics and progress go to stderr, data (``--json``, ``-`` outputs) to stdout. Every
failure the library raises is a :class:`CaecError` and becomes one ``caec: error: ...`` line
with exit status 1; usage errors are one such line too, with exit status 2.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import typer

from cae_codec import __version__, registry
from cae_codec.cli import coding
from cae_codec.cli.kit import CONTEXT_SETTINGS, EXIT_USAGE, CaecGroup, fail, run_app, use_plain_help
from cae_codec.registry import DEFAULT_CODEC


class _Caec(CaecGroup):
    # imported when run or listed (kit.CaecGroup): encode, decode, info and train are here, the
    # commands a per-file script runs, whose start-up counts
    lazy_commands: ClassVar[dict[str, tuple[str, str, dict[str, Any]]]] = {
        "truncate": ("cae_codec.cli.truncate", "truncate", {"no_args_is_help": True}),
        "models": ("cae_codec.cli.models", "models", {}),
        "compare": ("cae_codec.evaluate.cli", "compare", {}),
        "bdrate": ("cae_codec.evaluate.cli", "bdrate", {}),
        "serve": ("cae_codec.web.cli", "serve", {}),
        "enhance": ("cae_codec.comcnn.cli", "enhance", {"no_args_is_help": True}),
    }


app = typer.Typer(
    name="caec",
    cls=_Caec,
    help="caec: learned lossy image compression (CAE + PCA + JPEG2000).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings=CONTEXT_SETTINGS,
    # plain help, as cjpeg and cwebp print it: no boxes, readable in a pipe or a log
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"caec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """caec: learned lossy image compression (CAE + PCA + JPEG2000)."""


def train(ctx: typer.Context) -> None:
    """Train a codec's models: `caec train DATA ...` trains the default codec's, `caec train
    CODEC ...` another codec's (`caec train [CODEC] -h` lists the options)."""
    args = list(ctx.args)
    codec_id = args.pop(0) if args and args[0] in registry.CODECS else DEFAULT_CODEC
    command = getattr(registry.package(codec_id), "train_command", None)
    if command is None:
        raise fail(f"codec {codec_id} has no training command", EXIT_USAGE)
    prog = "caec train" if codec_id == DEFAULT_CODEC and ctx.args[:1] != [codec_id] else f"caec train {codec_id}"
    # not standalone: a usage error reaches caec's own handler, an exit status comes back
    status = typer.main.get_command(command()).main(args=args, prog_name=prog, standalone_mode=False)
    if isinstance(status, int) and status:
        raise typer.Exit(status)


app.command(no_args_is_help=True)(coding.encode)
app.command(no_args_is_help=True)(coding.decode)
app.command(no_args_is_help=True)(coding.info)
app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)(train)
use_plain_help(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
