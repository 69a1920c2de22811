"""The vidgate SDK: typed clients over the gateway's own models."""

from vidgate.client.aio import AsyncClient
from vidgate.client.sync import Client

__all__ = ["AsyncClient", "Client"]
