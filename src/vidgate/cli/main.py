"""The ``vidgate`` command: run the gateway, manage keys and jobs, generate and manage videos.

``-h`` is ``--help`` and ``--version`` works on every command, subcommands included.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

import typer

from vidgate.cli import jobs, keys, processes, storage, videos
from vidgate.cli.exit import exit_now


def _show_version(value: bool) -> None:
    if value:
        from vidgate import __version__

        typer.echo(f"vidgate {__version__}")
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option("--version", is_eager=True, callback=_show_version, help="Show the version and exit."),
]


class Vidgate(typer.Typer):
    """The app, with ``--version`` on every command and no value shown for flags in the help."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        command = typer.main.get_command(self)
        version_option = next(p for p in command.params if p.name == "version")
        _everywhere(command, version_option)
        if not kwargs.get("standalone_mode", True):
            return command(*args, **kwargs)
        try:
            command(*args, **kwargs)
        except SystemExit as done:  # how a command run as the process always ends
            exit_now(done.code)
        exit_now(0)


def _everywhere(command: Any, version_option: Any) -> None:
    """Give every subcommand a copy of the root's ``--version`` (its value not passed to the command),
    and give flags an empty metavar: a flag takes no value, so its help shows none."""
    for sub in getattr(command, "commands", {}).values():
        if all(p.name != "version" for p in sub.params):
            option = copy.copy(version_option)
            option.expose_value = False
            sub.params.append(option)
        _everywhere(sub, version_option)
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    original = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option


app = Vidgate(
    help="vidgate: a self-hostable gateway for AI video generation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(version: VersionOption = False) -> None:
    """vidgate: a self-hostable gateway for AI video generation."""


processes.register(app)
videos.register(app)
keys.register(app)
jobs.register(app)
storage.register(app)


if __name__ == "__main__":
    app()
