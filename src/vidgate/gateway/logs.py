"""Logging: plain text by default, JSON lines with ``VIDGATE_LOG_FORMAT=json``.

Every record carries the context bound for its task: the request id on API requests, the job id
in the worker, so one job can be followed across processes.

Two rules hold for every record in both formats, whoever logs it. A traceback shows the code and
the exception, never the values of local variables: a frame may hold the settings, a request's own
provider keys or a webhook secret. And every value has its control characters escaped (newlines,
carriage returns, terminal escapes, the C1 set, Unicode line separators and direction overrides), so
text a client sent, a URL or a header, cannot start a line that reads as another record or drive the
terminal that shows the log. A traceback keeps its lines, each indented in the text format.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, merge_contextvars
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["bind_contextvars", "configure", "escape"]

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BLOCKS = frozenset({"exception", "stack", "stack_info"})  # multi-line text by nature
_INDENT = "  "
_MAX_DEPTH = 16  # nesting rendered as structure in JSON; deeper values as their repr
_HANDLER = "vidgate"


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return _UNSAFE.sub(_escaped, text)


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Strings escaped all the way down; objects JSON has no type for become their (escaped) repr."""
    if isinstance(value, str):
        return escape(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < _MAX_DEPTH and isinstance(value, Mapping):
        return {_text_safe(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if depth < _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v, depth + 1) for v in value]
    return escape(repr(value))  # repr stops at a container that holds itself


def _text_safe(value: Any) -> Any:
    """What the console renderer prints, escaped: a string as it is, anything else as its repr."""
    if isinstance(value, str):
        return escape(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return escape(repr(value))


def _block(text: str, indent: str) -> str:
    """A traceback keeps its lines; each is escaped and, in the text format, indented under its record."""
    lines = text.rstrip("\n").split("\n")
    return "\n".join(indent + escape(line) for line in lines)


def _escape_processor(fmt: str) -> Processor:
    text = fmt != "json"

    def escape_values(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        out: EventDict = {}
        for key, value in event_dict.items():
            safe_key = escape(key) if isinstance(key, str) else key
            if key in _BLOCKS and isinstance(value, str):
                out[safe_key] = _block(value, _INDENT if text else "")
            else:
                out[safe_key] = _text_safe(value) if text else _json_safe(value)
        return out

    return escape_values


def processors(fmt: str) -> list[Processor]:
    """What every record goes through after its context is merged, ending with the renderer.

    ``format_exc_info`` turns ``exc_info`` into plain traceback text (the standard library's, which
    shows no locals) before anything is escaped; the console renderer is given a plain formatter too,
    so an ``exc_info`` added past this point would still show none.
    """
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        _escape_processor(fmt),
        renderer,
    ]


def configure(fmt: str = "text", level: str = "INFO") -> None:
    shared: list[Processor] = [
        merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=processors(fmt),
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER)
    root = logging.getLogger("vidgate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # Libraries' warnings and errors (asyncio's "exception was never retrieved", say) go through the
    # same rules, unless the embedding application has configured the root logger itself.
    top = logging.getLogger()
    top.handlers[:] = [h for h in top.handlers if h.get_name() != _HANDLER]
    if not top.handlers:
        fallback = logging.StreamHandler()
        fallback.setFormatter(formatter)
        fallback.set_name(_HANDLER)
        top.addHandler(fallback)
