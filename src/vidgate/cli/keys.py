"""``vidgate keys`` and ``vidgate ledger``: API keys and balances, on the database directly.

A key is written to the database this command's settings name. ``keys create`` then asks a server
on this machine (``--base-url``, else the configured host and port) which database it uses, and
says so when it is another one: a key made in one data dir is unknown to a server on another.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from vidgate.cli import database
from vidgate.cli.options import AsJSON, Config, DataDir, paragraphs

if TYPE_CHECKING:
    from vidgate.gateway.settings import Settings
    from vidgate.gateway.storage.db import Database

keys_app = typer.Typer(help="Manage API keys (works on the database directly).", no_args_is_help=True)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def _server_url(settings: Settings, base_url: str | None) -> str:
    if base_url:
        return base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def database_hint(settings: Settings, base_url: str | None) -> str | None:
    """What to tell the user when the server on this machine uses another database than this command."""
    import httpx

    from vidgate.gateway.api.health import DATABASE_HEADER, database_fingerprint

    url = _server_url(settings, base_url)
    if urlsplit(url).hostname not in LOOPBACK:
        return None  # a remote server never tells (and is another machine's database anyway)
    try:
        theirs = httpx.get(url + "/healthz", timeout=1.0).headers.get(DATABASE_HEADER)
    except httpx.HTTPError:
        return None  # no server there yet: nothing to compare
    ours = database_fingerprint(settings.database_url)
    if not theirs or not ours or theirs == ours:
        return None
    return (
        f"warning: the server at {url} uses another database, so it will not know this key. "
        f"This key is in {settings.data_dir}: run this command with the server's --data-dir "
        "(or VIDGATE_DATA_DIR), or start the server with this one."
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "default",
    balance: Annotated[float | None, typer.Option(help="Starting balance in USD.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the id, name and key as JSON.")] = False,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", envvar="VIDGATE_BASE_URL", help="The local server to check the database against."),
    ] = None,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Create an API key; its secret is printed once, as the last line."""
    from vidgate.gateway.auth import Keys

    async def go(db: Database, settings: Settings) -> Any:
        amount = settings.default_balance_micros if balance is None else round(balance * 1_000_000)
        return await Keys(db, settings.admin_key).create(name, amount), settings

    key, settings = database.run(data_dir, config, go)
    if as_json:
        typer.echo(json.dumps({"id": key.id, "key": key.key, "name": key.name}))
    else:
        typer.echo(f"created key {key.id} ({key.name}); keep the secret below, it is not shown again:", err=True)
        typer.echo(key.key)
    hint = database_hint(settings, base_url)
    if hint:
        typer.echo(hint, err=True)


@keys_app.command("list")
def keys_list(as_json: AsJSON = False, data_dir: DataDir = None, config: Config = None) -> None:
    """List API keys (never their secrets)."""
    from vidgate.gateway.auth import Keys

    rows = database.run(data_dir, config, lambda db, s: Keys(db, s.admin_key).list())
    if as_json:
        fields = ("id", "name", "prefix", "created_at", "revoked_at")
        typer.echo(json.dumps([{f: getattr(k, f) for f in fields} for k in rows]))
        return
    for k in rows:
        typer.echo(f"{k.id}  {k.prefix}…  {k.name}{'  (revoked)' if k.revoked_at else ''}")


REVOKE_HELP = paragraphs(
    "Revoke an API key.",
    "Running servers refuse it within 2 s and close its open websockets and event streams, its stream tokens "
    "included, within about a second (at once when revoked through a server's admin route, in that server).",
)


@keys_app.command("revoke", help=REVOKE_HELP)
def keys_revoke(key_id: str, as_json: AsJSON = False, data_dir: DataDir = None, config: Config = None) -> None:
    """Revoke an API key."""
    from vidgate.gateway.auth import Keys

    key = database.run(data_dir, config, lambda db, s: Keys(db, s.admin_key).revoke(key_id))
    typer.echo(json.dumps({"id": key.id, "revoked_at": key.revoked_at}) if as_json else f"revoked {key.id}")


@keys_app.command("topup")
def keys_topup(
    key_id: str,
    amount: Annotated[float, typer.Argument(help="USD to add (negative to correct a balance).")],
    memo: Annotated[str | None, typer.Option(help="A note kept on the ledger entry.")] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Add funds to a key's balance (a ledger entry)."""
    from vidgate.gateway.billing import accounts

    view = database.run(data_dir, config, lambda db, s: accounts.topup(db, key_id, round(amount * 1e6), memo))
    typer.echo(
        json.dumps(view)
        if as_json
        else f"{key_id}: balance {_dollars(view['balance'])}, available {_dollars(view['available'])}"
    )


@keys_app.command("limits")
def keys_limits(
    key_id: str,
    daily: Annotated[float | None, typer.Option(help="Daily spend limit in USD (0 removes it).")] = None,
    monthly: Annotated[float | None, typer.Option(help="Monthly spend limit in USD (0 removes it).")] = None,
    rate: Annotated[int | None, typer.Option(help="Requests a second (0 removes it).")] = None,
    burst: Annotated[int | None, typer.Option(help="Token bucket size.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs queued or running at once (0 removes it).")] = None,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Set a key's limits; prints them all."""
    from vidgate.gateway.billing import accounts

    values: dict[str, int | None] = {}
    for field, value, money in (
        ("daily_limit", daily, True),
        ("monthly_limit", monthly, True),
        ("rate_per_second", rate, False),
        ("rate_burst", burst, False),
        ("max_concurrent_jobs", concurrency, False),
    ):
        if value is not None:
            values[field] = (round(value * 1e6) if money else int(value)) or None
    view = database.run(data_dir, config, lambda db, s: accounts.set_limits(db, key_id, values))
    typer.echo(json.dumps(view["limits"]))


def ledger(
    key_id: str,
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 50,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Show a key's balance and its newest ledger entries."""
    from vidgate.gateway.billing import accounts

    async def go(db: Database, s: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return accounts.balance_view(await accounts.account(db, key_id)), await accounts.entries(db, key_id, limit)

    view, entries = database.run(data_dir, config, go)
    if as_json:
        typer.echo(json.dumps({**view, "entries": entries}))
        return
    typer.echo(
        f"balance {_dollars(view['balance'])}  held {_dollars(view['held'])}  available {_dollars(view['available'])}"
    )
    for e in entries:
        typer.echo(f"{e['created_at']}  {e['kind']:<8} {e['amount']:>12.6f}  {e['job_id'] or ''}  {e['memo'] or ''}")


def register(app: typer.Typer) -> None:
    app.command()(ledger)
    app.add_typer(keys_app, name="keys")
