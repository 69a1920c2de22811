"""CLI commands that talk to a running gateway through the SDK: generate, videos, models."""

from __future__ import annotations

import base64
import mimetypes
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vidgate.cli.options import fail
from vidgate.client import Client
from vidgate.errors import VidgateError
from vidgate.types import Video

BaseURL = Annotated[str | None, typer.Option("--base-url", envvar="VIDGATE_BASE_URL", help="Gateway URL.")]
APIKey = Annotated[str | None, typer.Option("--api-key", envvar="VIDGATE_API_KEY", help="API key.")]
JSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
console = Console(stderr=True)
T = TypeVar("T")

videos_app = typer.Typer(help="Manage video jobs on a running gateway.", no_args_is_help=True)


def _client(base_url: str | None, api_key: str | None) -> Client:
    return Client(api_key=api_key, base_url=base_url)


def _run(fn: Callable[[], T]) -> T:
    """Turn API errors into a message and a non-zero exit code."""
    try:
        return fn()
    except VidgateError as exc:
        where = f" (param: {exc.param})" if exc.param else ""
        rid = f" [request {exc.request_id}]" if exc.request_id else ""
        console.print(f"[red]error[/red] {exc.code}: {exc.message}{where}{rid}")
        raise typer.Exit(2 if exc.status in (400, 404, 409, 413, 415) else 1) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def _image_url(value: str) -> str:
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value)
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def check_output(path: Path) -> None:
    """Exit (code 2) unless a file can be written at ``path``: checked before a job is created and
    charged, not after it rendered."""
    if path.is_dir():
        fail(f"{path} is a directory: name a file, e.g. -o {path / 'video.mp4'}", 2)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        fail(f"cannot write {path}: {parent} is not a directory", 2)
    try:
        with tempfile.TemporaryFile(dir=parent) as probe:  # a real write: permissions, read-only mounts
            probe.write(b"ok")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", 2)


def _summary(video: Video, path: Path | None) -> str:
    asset = video.asset
    parts = [f"{video.id} {video.status}"]
    if asset is not None:
        parts.append(f"{asset.width}x{asset.height} {asset.duration_seconds:.2f}s {asset.bytes} bytes")
        parts.append(f"sha256 {asset.sha256[:16]}…")
    if path is not None:
        parts.append(f"saved to {path}")
    return " · ".join(parts)


def generate(
    prompt: Annotated[str, typer.Argument(help="What the video should show.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the MP4.")] = Path("video.mp4"),
    model: Annotated[str, typer.Option(help="Model id (vidgate models lists them).")] = "vidgate/procedural",
    duration: Annotated[int | None, typer.Option(help="Seconds.")] = None,
    resolution: Annotated[str | None, typer.Option(help="e.g. 720p")] = None,
    aspect_ratio: Annotated[str | None, typer.Option("--aspect-ratio", help="e.g. 16:9")] = None,
    size: Annotated[str | None, typer.Option(help="e.g. 1280x720 (instead of resolution/aspect)")] = None,
    seed: Annotated[int | None, typer.Option(help="The same prompt and seed give the same video.")] = None,
    audio: Annotated[bool | None, typer.Option("--audio/--no-audio", help="Generate an audio track.")] = None,
    negative_prompt: Annotated[
        str | None, typer.Option("--negative-prompt", help="What the video should not show.")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="First frame: a file, https URL or data: URL.")] = None,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 1800.0,
    base_url: BaseURL = None,
    api_key: APIKey = None,
    as_json: JSON = False,
) -> None:
    """Create a video, show its progress, and download it."""
    check_output(output)
    client = _client(base_url, api_key)
    fields: dict[str, Any] = {
        "duration": duration,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
        "size": size,
        "seed": seed,
        "generate_audio": audio,
        "negative_prompt": negative_prompt,
    }
    if image:
        fields["input_references"] = [
            {"type": "image_url", "role": "first_frame", "image_url": {"url": _image_url(image)}}
        ]
    video = _run(lambda: client.videos.create(model=model, prompt=prompt, **fields))
    console.print(f"created [bold]{video.id}[/bold] on {video.provider or 'a provider'}")
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task(video.status, total=100)

            def show(v: Video) -> None:
                bar.update(task, completed=v.progress or 0, description=f"{v.status} ({v.progress_source or '-'})")

            video = _run(lambda: client.videos.wait(video.id, timeout=timeout, on_progress=show))
    except KeyboardInterrupt:
        if sys.stdin.isatty() and typer.confirm(f"\ncancel {video.id}?", default=True):
            _run(lambda: client.videos.cancel(video.id))
            console.print(f"cancelled {video.id}")
        raise typer.Exit(130) from None
    if video.status != "completed":
        message = video.error.message if video.error else "no detail"
        console.print(f"[red]{video.id} ended {video.status}[/red]: {message}")
        if as_json:
            _print_json(video)
        raise typer.Exit(1)
    path = _run(lambda: client.videos.download(video.id, output))
    if as_json:
        _print_json({"video": video, "path": str(path)})
    else:
        console.print(_summary(video, path))
        typer.echo(str(path))


@videos_app.command("list")
def list_videos(
    status: Annotated[str | None, typer.Option(help="Comma-separated statuses.")] = None,
    limit: Annotated[int, typer.Option(help="How many, at most 100.")] = 20,
    after: Annotated[str | None, typer.Option(help="List after this id.")] = None,
    base_url: BaseURL = None,
    api_key: APIKey = None,
    as_json: JSON = False,
) -> None:
    """List your videos, newest first."""
    page = _run(lambda: _client(base_url, api_key).videos.list(status=status, limit=limit, after=after))
    if as_json:
        _print_json(page)
        return
    table = Table("id", "status", "model", "progress", "size", "seconds")
    for v in page.data:
        table.add_row(v.id, v.status, v.model, str(v.progress or 0), str(v.size or ""), str(v.seconds or ""))
    Console().print(table)
    if page.has_more:
        console.print(f"more: --after {page.last_id}")


@videos_app.command("get")
def get_video(video_id: str, base_url: BaseURL = None, api_key: APIKey = None, as_json: JSON = False) -> None:
    """Show one video."""
    video = _run(lambda: _client(base_url, api_key).videos.get(video_id))
    if as_json:
        _print_json(video)
    else:
        typer.echo(_summary(video, None))


@videos_app.command("download")
def download(
    video_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the MP4.")] = Path("video.mp4"),
    index: Annotated[int, typer.Option(help="Which output, for a job with several samples.")] = 0,
    base_url: BaseURL = None,
    api_key: APIKey = None,
    as_json: JSON = False,
) -> None:
    """Download a finished video (resumes a partial file, checks the sha256)."""
    check_output(output)
    path = _run(lambda: _client(base_url, api_key).videos.download(video_id, output, index=index))
    _print_json({"path": str(path)}) if as_json else typer.echo(str(path))


@videos_app.command("cancel")
def cancel(video_id: str, base_url: BaseURL = None, api_key: APIKey = None, as_json: JSON = False) -> None:
    """Cancel a queued or running video."""
    video = _run(lambda: _client(base_url, api_key).videos.cancel(video_id))
    _print_json(video) if as_json else typer.echo(f"{video.id} {video.status}")


@videos_app.command("delete")
def delete(video_id: str, base_url: BaseURL = None, api_key: APIKey = None, as_json: JSON = False) -> None:
    """Delete a finished video and its stored outputs."""
    result = _run(lambda: _client(base_url, api_key).videos.delete(video_id))
    _print_json(result) if as_json else typer.echo(f"deleted {result.id}")


def models(base_url: BaseURL = None, api_key: APIKey = None, as_json: JSON = False) -> None:
    """List the model catalogue."""
    result = _run(lambda: _client(base_url, api_key).videos.list_models())
    if as_json:
        _print_json(result)
        return
    table = Table("model", "durations", "resolutions", "audio", "providers", "$/s")
    for m in result.data:
        d = m.capabilities.durations
        span = f"{d[0]}-{d[-1]}" if len(d) > 3 else ",".join(map(str, d))
        provs = ", ".join(p.name + ("" if p.available else " (off)") for p in m.providers)
        price = f"{m.pricing.per_second:.4f}" if not isinstance(m.pricing, type(msgspec.UNSET)) else "-"
        table.add_row(
            m.id, span, ",".join(m.capabilities.resolutions), "yes" if m.capabilities.audio else "no", provs, price
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(models)
    app.add_typer(videos_app, name="videos")
