"""Logging: plain text by default, JSON lines with ``VIDGATE_LOG_FORMAT=json``.

Every record carries the context bound for its task: the request id on API requests, the job id
in the worker, so one job can be followed across processes.
"""

from __future__ import annotations

import logging

import structlog
from structlog.contextvars import bind_contextvars, merge_contextvars

__all__ = ["bind_contextvars", "configure"]


def configure(fmt: str = "text", level: str = "INFO") -> None:
    shared = [merge_contextvars, structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso")]
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger("vidgate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
