"""The route table's second spellings, served and documented beside the first.

Every ``/v1/videos`` route is also served under ``/v1/video/generations``, the reference's other
spelling, and documented there as an alias (operation id ``…Alias``, ``x-alias-of`` its path). The
webhook endpoint routes (``/v1/webhook-endpoints``, the reference SDK's spelling) are also served
under ``/v1/webhook_endpoints``.
"""

from __future__ import annotations

from dataclasses import replace

from vidgate.gateway.api.endpoint import Endpoint, Files
from vidgate.gateway.api.openapi import Operation

VIDEOS, GENERATIONS = "/v1/videos", "/v1/video/generations"
WEBHOOK_ENDPOINTS = "/v1/webhook-endpoints"  # the reference SDK's spelling; also served as webhook_endpoints


def alias(entry: Endpoint) -> Endpoint:
    """``entry`` under ``/v1/video/generations``, documented as an alias of its path."""
    doc = entry.doc
    if isinstance(doc, Operation):
        doc = replace(doc, id=f"{doc.id}Alias", summary=f"{doc.summary} (alias of {entry.path})", alias_of=entry.path)
    return replace(entry, path=GENERATIONS + entry.path[len(VIDEOS) :], doc=doc)


def underscored(entry: Endpoint) -> Endpoint:
    """A webhook endpoint route under ``/v1/webhook_endpoints``, documented as an alias."""
    doc = entry.doc
    if isinstance(doc, Operation):
        doc = replace(doc, id=f"{doc.id}Alias", summary=f"{doc.summary} (alias of {entry.path})")
    return replace(entry, path="/v1/webhook_endpoints" + entry.path[len(WEBHOOK_ENDPOINTS) :], doc=doc)


def with_aliases(table: tuple[Endpoint | Files, ...]) -> tuple[Endpoint | Files, ...]:
    """``table`` followed by its ``/v1/video/generations`` aliases, then its ``webhook_endpoints`` ones."""
    table += tuple(
        alias(e) for e in table if isinstance(e, Endpoint) and (e.path == VIDEOS or e.path.startswith(VIDEOS + "/"))
    )
    return table + tuple(
        underscored(e) for e in table if isinstance(e, Endpoint) and e.path.startswith(WEBHOOK_ENDPOINTS)
    )
