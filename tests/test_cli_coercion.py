"""cli.kit's start-up levers (issue 20): option values coerced without Typer's pydantic layer where
that is the identity or int()/float(), and the subcommands other than encode, decode, info and
train imported only when run or listed."""

from __future__ import annotations

import typer
from typer._coercion import build_runtime_param, resolve_type_descriptor
from typer.models import OptionInfo
from typer.testing import CliRunner

from cae_codec.cli import app
from cae_codec.cli.kit import _NOT_PLAIN, CaecGroup, plain_value

VALUES = ["abc", "", "5", "007", "-3", "0.5", "-0.25", "3", "1e3", " 5", "+5", "nan", "5.", 95, 2, 0.1, True]


def _typer(descriptor: object, value: object) -> object:
    try:
        return build_runtime_param(descriptor)._coerce_value(value, param=None, ctx=None)  # type: ignore[arg-type]
    except Exception as e:  # Typer's BadParameter, or pydantic's error
        return e


def test_plain_values_are_what_typer_makes_of_them() -> None:
    infos = [OptionInfo(), OptionInfo(min=1, max=100), OptionInfo(min=0)]
    checked = 0
    for annotation in (str, int, float):
        for info in infos:
            descriptor = resolve_type_descriptor(annotation, info)
            for value in VALUES:
                plain = plain_value(descriptor, value)
                if plain is _NOT_PLAIN:
                    continue
                expected = _typer(descriptor, value)
                assert plain == expected and type(plain) is type(expected), (annotation, info.min, value)
                checked += 1
    descriptor = resolve_type_descriptor(list[str], OptionInfo())
    for value in [("a", "b"), ()]:
        assert plain_value(descriptor, value) == _typer(descriptor, value)
    assert checked > 20


def test_what_is_not_plain_is_left_to_typer() -> None:
    ranged = resolve_type_descriptor(int, OptionInfo(min=1, max=100))
    assert plain_value(ranged, "101") is _NOT_PLAIN and plain_value(ranged, "0") is _NOT_PLAIN
    assert plain_value(resolve_type_descriptor(int, OptionInfo()), "1e3") is _NOT_PLAIN
    assert plain_value(resolve_type_descriptor(int, OptionInfo()), True) is _NOT_PLAIN
    assert plain_value(resolve_type_descriptor(str, OptionInfo(parser=str.upper)), "a") is _NOT_PLAIN


def test_every_parameter_of_the_app_is_coerced_as_typer_does() -> None:
    """Each command's own defaults and a few typed values: the same as Typer's coercion."""
    group = typer.main.get_command(app)
    ctx = group.make_context("caec", ["info", "x"], resilient_parsing=True)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        for param in command.get_params(ctx):
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None:
                continue
            for value in [param.default, "7", "0.5", "x"]:
                if value is None:
                    continue
                plain = plain_value(descriptor, value)
                if plain is not _NOT_PLAIN:
                    assert plain == _typer(descriptor, value), (name, param.name, value)


def test_out_of_range_and_bad_numbers_keep_typers_errors(tmp_path: object) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["decode", "x.cae", "--output-quality", "101"])
    assert r.exit_code == 2 and "--output-quality" in r.output and "100" in r.output
    r = runner.invoke(app, ["encode", "x.png", "--quality", "four"])
    assert r.exit_code == 2 and "--quality" in r.output


def test_lazy_commands_are_listed_in_help_and_run() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    group = typer.main.get_command(app)
    assert isinstance(group, CaecGroup) and group.lazy_commands
    for name in group.lazy_commands:
        assert name in r.output
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0 and f"caec {name}" in sub.output, (name, sub.output)
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0 and "cae-gdn-v3" in r.output
