"""The options the gateway's own commands share, and the one way each of them finds its settings.

Every command that opens the database (``serve``, ``api``, ``worker``, ``migrate``, ``keys``,
``jobs``, ``storage``) resolves its data dir and config file here, the same way: the flag, else
``VIDGATE_DATA_DIR`` / ``VIDGATE_CONFIG``, else the config file's value, else ``./.vidgate``. The flags
are written back into the environment, so the server processes a command starts resolve the same.
"""

from __future__ import annotations

import errno
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from vidgate.gateway.settings import Settings

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the embedded database and files live (VIDGATE_DATA_DIR; default ./.vidgate)."
    ),
]
Config = Annotated[Path | None, typer.Option("--config", help="A TOML settings file (VIDGATE_CONFIG).")]
AsJSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def paragraphs(*texts: str) -> str:
    """A command's help from single-line paragraphs: the help renderer keeps a docstring's line breaks."""
    return "\n\n".join(texts)


def one_line(text: object) -> str:
    """``text`` with its line breaks and runs of spaces folded: an error is one line."""
    return " ".join(str(text).split())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr, as one line, and exit with ``code``."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def load(data_dir: Path | None, config: Path | None) -> Settings:
    """This command's settings (see the module docstring); a file or value that cannot be read is one
    line and exit 1, never a traceback."""
    if data_dir is not None:
        os.environ["VIDGATE_DATA_DIR"] = str(data_dir)
    if config is not None:
        os.environ["VIDGATE_CONFIG"] = str(config)
    from vidgate.gateway.catalog.configured import ConfigError
    from vidgate.gateway.settings import load_settings

    source = os.environ.get("VIDGATE_CONFIG")
    try:
        return load_settings()
    except tomllib.TOMLDecodeError as exc:
        fail(f"cannot read the config file {source}: {exc}")
    except OSError as exc:
        where = str(exc.filename or source)
        data_dir = Path(os.environ.get("VIDGATE_DATA_DIR") or ".vidgate").expanduser().absolute()
        if where.startswith(str(data_dir)):
            if exc.errno in (errno.EEXIST, errno.ENOTDIR):
                fail(f"the data dir {data_dir} cannot be used: it is not a directory")
            fail(f"the data dir {data_dir} cannot be used: {exc.strerror or exc} ({where})")
        fail(f"cannot use {where}: {exc.strerror or exc}")
    except ConfigError as exc:
        fail(str(exc))
    except (ValueError, TypeError) as exc:
        where = _culprit() or (f"in {source}" if source else "")
        fail(f"bad setting{' ' + where if where else ''}: {exc}")


def _culprit() -> str:
    """The ``VIDGATE_*`` variable whose value is not of its setting's type ("" when none is)."""
    from dataclasses import fields

    from vidgate.gateway.settings import Settings

    kinds = {"int": int, "float": float}
    for f in fields(Settings):
        kind = kinds.get(str(f.type))
        raw = os.environ.get(f"VIDGATE_{f.name.upper()}")
        if kind is not None and raw is not None:
            try:
                kind(raw)
            except ValueError:
                return f"VIDGATE_{f.name.upper()}"
    return ""


def configured(name: str) -> bool:
    """Whether setting ``name`` was given (env or config file), rather than left to its default."""
    if os.environ.get(f"VIDGATE_{name.upper()}"):
        return True
    source = os.environ.get("VIDGATE_CONFIG")
    if not source:
        return False
    try:
        return bool(tomllib.loads(Path(source).read_text()).get(name))
    except (OSError, tomllib.TOMLDecodeError):
        return False
