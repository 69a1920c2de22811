"""The websocket pump in-process, on the real event bus: one wake-up path for events, client messages
and heartbeats, and each event encoded once for every socket that carries it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from vidgate.gateway.events import stream
from vidgate.gateway.events.bus import EventBus
from vidgate.types import JobEvent, Video

JOB = "vid_pump"


class FakeWS:
    """What the pump uses of a starlette WebSocket: its scope, send_text and receive. The scope has no
    server send of its own, so every message goes through ``send_text``."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {"type": "websocket"}
        self.sent: list[str] = []
        self.at: list[float] = []
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self.gate = asyncio.Event()  # cleared: sends block, as to a client that stopped reading
        self.gate.set()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)
        self.at.append(time.monotonic())

    async def receive(self) -> dict[str, Any]:
        item = await self.incoming.get()
        if isinstance(item, Exception):
            raise item
        return item

    def say(self, text: str) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def kinds(self) -> list[str]:
        return [json.loads(t)["type"] for t in self.sent]


class FakeJobs:
    def __init__(self, video: Video) -> None:
        self.video = video

    async def row(self, who: str, job_id: str) -> Video:
        return self.video

    def view(self, row: Video, base: str | None = None) -> Video:
        return row


class FakeGateway:
    def __init__(self, video: Video) -> None:
        self.jobs = FakeJobs(video)


def video(status: str = "processing", progress: int | None = 10) -> Video:
    return Video(id=JOB, status=status, model="vidgate/procedural", created_at=1, progress=progress)  # type: ignore[arg-type]


def event(n: int, status: str = "processing") -> JobEvent:
    return JobEvent(id=f"evt_{n:04d}", type=f"video.{status}", created_at=n, data=video(status, 10 + n))


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def start(bus: EventBus, heartbeat: float = 10.0, close_on_terminal: bool = True) -> tuple[FakeWS, asyncio.Task[bool]]:
    ws = FakeWS()
    queue = bus.subscribe(JOB)
    sock = stream._Socket(ws, heartbeat, queue)  # type: ignore[arg-type]
    g = FakeGateway(video("completed", 100))
    task = asyncio.create_task(stream.pump(sock, g, "own_1", JOB, queue, video(), close_on_terminal))
    return ws, task


async def test_every_socket_gets_the_same_encoded_text_and_terminal_closes() -> None:
    bus = EventBus()
    pumps = [start(bus) for _ in range(3)]
    await wait_for(lambda: all(ws.sent for ws, _ in pumps))
    bus.publish(event(1))
    await wait_for(lambda: all(len(ws.sent) == 2 for ws, _ in pumps))
    first = pumps[0][0].sent[1]
    assert all(ws.sent[1] is first for ws, _ in pumps)  # encoded once, the same str sent to all
    assert json.loads(first) == {
        "type": "job.updated",
        "event": "video.processing",
        "id": "evt_0001",
        "data": json.loads(stream._encoder.encode(event(1).data)),
    }
    bus.publish(event(2, "completed"))
    assert await asyncio.wait_for(asyncio.gather(*(t for _, t in pumps)), 10) == [True, True, True]
    assert [ws.kinds() for ws, _ in pumps] == [["job.snapshot", "job.updated", "job.updated"]] * 3


async def test_client_messages_are_answered_at_once_and_disconnect_ends_the_pump() -> None:
    bus = EventBus()
    ws, task = start(bus, close_on_terminal=False)
    await wait_for(lambda: ws.sent)
    for text, kind in (("ping", "pong"), ('{"type": "refresh"}', "job.updated"), ("hello", "error")):
        t0 = time.monotonic()
        ws.say(text)
        await wait_for(lambda kind=kind: ws.kinds()[-1] == kind)
        assert time.monotonic() - t0 < 5  # at once, not with the next heartbeat, 10 s on
    bus.publish(event(3, "completed"))  # close_on_terminal=false: relayed, the socket stays open
    await wait_for(lambda: ws.kinds()[-1] == "job.updated")
    assert not task.done()
    ws.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
    assert await asyncio.wait_for(task, 10) is False


async def test_a_flooding_client_is_read_one_message_at_a_time() -> None:
    bus = EventBus()
    ws, task = start(bus)
    await wait_for(lambda: ws.sent)
    ws.gate.clear()
    for _ in range(100):
        ws.say("ping")
    await asyncio.sleep(0.1)
    assert ws.incoming.qsize() >= 98  # one pong blocked in send, at most one more message read
    ws.gate.set()
    await wait_for(lambda: ws.kinds().count("pong") == 100)
    ws.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await asyncio.wait_for(task, 10) is False


async def test_refresh_of_a_finished_job_closes() -> None:
    bus = EventBus()
    ws, task = start(bus)
    await wait_for(lambda: ws.sent)
    ws.say("refresh")
    assert await asyncio.wait_for(task, 10) is True
    assert json.loads(ws.sent[-1])["data"]["status"] == "completed"


async def test_heartbeat_only_after_an_idle_interval() -> None:
    bus = EventBus()
    ws, task = start(bus, heartbeat=1.0)
    await wait_for(lambda: ws.sent)
    for n in range(8):  # an update every 0.1 s (a tenth of the interval) keeps the socket busy: no heartbeat
        bus.publish(event(10 + n))
        await asyncio.sleep(0.1)
    assert "heartbeat" not in ws.kinds()
    await wait_for(lambda: ws.kinds().count("heartbeat") == 2)
    assert ws.kinds()[-3:] == ["job.updated", "heartbeat", "heartbeat"]
    gaps = [b - a for a, b in zip(ws.at[-3:], ws.at[-2:], strict=False)]
    assert all(0.9 < gap < 5 for gap in gaps), gaps  # each after an idle interval, not sooner
    ws.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await asyncio.wait_for(task, 10) is False


async def test_a_failed_receive_ends_the_pump_with_its_error() -> None:
    bus = EventBus()
    ws, task = start(bus)
    await wait_for(lambda: ws.sent)
    ws.incoming.put_nowait(OSError("connection reset"))
    with pytest.raises(OSError, match="connection reset"):
        await asyncio.wait_for(task, 10)


async def test_deleted_job_is_sent_and_closes() -> None:
    bus = EventBus()
    ws, task = start(bus)
    await wait_for(lambda: ws.sent)
    bus.publish_deleted(JOB)
    assert await asyncio.wait_for(task, 10) is True
    assert json.loads(ws.sent[-1]) == stream._deleted(JOB)


def test_encoding_is_shared_per_event_object_only() -> None:
    one, same_id = event(20), event(20, "completed")
    assert stream._update(one)[1] is stream._update(one)[1]
    assert json.loads(stream._update(same_id)[1])["event"] == "video.completed"  # not the cached one
    assert stream._sse_update(JOB, one) == stream._frame(stream._message("job.updated", one.data, one), one.id)
