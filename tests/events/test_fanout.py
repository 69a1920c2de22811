"""One fan-out per job, in-process on the real event bus: each event goes from one task straight to
every idle socket through the server's own send, as the bus publishes it, while a slow socket falls back to its own pump
and queue, in order, without holding up the others."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from vidgate.gateway.events import stream
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.fanout import fanout_of
from vidgate.gateway.events.sockets import SERVER_SEND, Socket

from .test_stream_pump import JOB, FakeGateway, FakeWS, event, video, wait_for


class ServerWS(FakeWS):
    """A websocket whose scope carries a server ``send`` that starts the write when called and
    returns a future, as Granian's does. ``hold`` keeps the futures pending (a client not reading)."""

    def __init__(self) -> None:
        super().__init__()
        self.scope[SERVER_SEND] = self.server_send
        self.direct: list[str] = []  # texts handed to the server's send
        self.hold = False
        self.pending: list[asyncio.Future[None]] = []
        self.fail: Exception | None = None

    def server_send(self, message: dict[str, Any]) -> asyncio.Future[None]:
        if self.fail is not None:
            raise self.fail
        self.direct.append(message["text"])
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.hold:
            self.pending.append(future)
        else:
            future.set_result(None)
        return future

    def release(self) -> None:
        self.hold = False
        for future in self.pending:
            future.set_result(None)
        self.pending.clear()

    def ids(self) -> list[str | None]:
        return [json.loads(t).get("id") for t in self.direct]


class CountingQueue:
    """A socket's queue that records what is put on it: each put wakes the socket's pump."""

    def __init__(self, queue: asyncio.Queue[Any], log: list[Any]) -> None:
        self.queue, self.log = queue, log

    def put_nowait(self, item: Any) -> None:
        self.log.append(item)
        self.queue.put_nowait(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def open_socket(bus: EventBus, close_on_terminal: bool = True) -> tuple[ServerWS, Socket, asyncio.Task[bool]]:
    ws = ServerWS()
    queue: asyncio.Queue[Any] = asyncio.Queue(8)
    sock = Socket(ws, 10.0, queue)  # type: ignore[arg-type]
    fanout_of(bus).join(JOB, sock)
    g = FakeGateway(video("completed", 100))
    task = asyncio.create_task(stream.pump(sock, g, "own_1", JOB, queue, video(), close_on_terminal))  # type: ignore[arg-type]
    task.add_done_callback(lambda _: fanout_of(bus).leave(JOB, sock))
    return ws, sock, task


async def test_one_task_sends_each_event_to_every_idle_socket_without_waking_their_pumps() -> None:
    bus = EventBus()
    socks = [open_socket(bus) for _ in range(3)]
    await wait_for(lambda: all(sock.idle for _, sock, _ in socks))
    assert JOB in bus._listeners and not bus._subs  # one listener for the job, no queue per socket
    woken: list[Any] = []
    for _, sock, _ in socks:  # count the pumps' wake-ups: every item put on a socket's queue
        sock.queue = CountingQueue(sock.queue, woken)  # type: ignore[assignment]
    bus.publish(event(1))
    await wait_for(lambda: all(len(ws.direct) == 2 for ws, _, _ in socks))
    assert woken == []
    assert all(sock.idle for _, sock, _ in socks)
    first = socks[0][0].direct[1]
    assert all(ws.direct[1] is first for ws, _, _ in socks)  # encoded once for all of them
    assert json.loads(first)["id"] == "evt_0001"

    bus.publish(event(2, "completed"))  # sent by the fan-out, then each pump is woken to close
    assert await asyncio.wait_for(asyncio.gather(*(t for _, _, t in socks)), 5) == [True] * 3
    assert [ws.ids() for ws, _, _ in socks] == [[None, "evt_0001", "evt_0002"]] * 3
    assert all(ws.sent == [] for ws, _, _ in socks)  # nothing went through the framework's send
    await wait_for(lambda: JOB not in bus._listeners)  # the hub left with its last socket
    assert fanout_of(bus).hubs == {}


async def test_a_slow_socket_falls_behind_on_its_own_queue_in_order_and_holds_up_no_other() -> None:
    bus = EventBus()
    (slow, slow_sock, slow_task), (fast, _, fast_task) = open_socket(bus), open_socket(bus)
    await wait_for(lambda: slow_sock.idle and len(fast.direct) == 1)
    slow.hold = True
    for n in (1, 2, 3):
        bus.publish(event(n))
    await wait_for(lambda: len(fast.direct) == 4)
    assert fast.ids() == [None, "evt_0001", "evt_0002", "evt_0003"]
    await asyncio.sleep(0.05)  # the slow socket's first send is still being written: nothing more yet
    assert slow.ids() == [None, "evt_0001"]
    assert not slow_sock.idle

    slow.release()  # the pump, woken for the second event, waits for the first send, then sends the rest
    await wait_for(lambda: len(slow.direct) == 4)
    assert slow.ids() == [None, "evt_0001", "evt_0002", "evt_0003"]
    await wait_for(lambda: slow_sock.idle)  # caught up: the fan-out sends to it directly again
    bus.publish(event(4, "completed"))
    assert await asyncio.wait_for(asyncio.gather(slow_task, fast_task), 5) == [True, True]
    assert slow.ids()[-1] == fast.ids()[-1] == "evt_0004"


async def test_an_overflowing_slow_socket_loses_the_oldest_and_keeps_the_terminal() -> None:
    bus = EventBus()
    slow, slow_sock, slow_task = open_socket(bus)
    await wait_for(lambda: slow_sock.idle)
    slow.hold = True
    for n in range(1, 20):  # far more than the socket's queue of 8
        bus.publish(event(n))
    bus.publish(event(20, "completed"))
    await wait_for(lambda: slow_sock.queue.qsize() == 7)  # full, less the one its pump is sending
    slow.release()
    while not slow_task.done():
        slow.release()
        await asyncio.sleep(0.01)
    assert slow_task.result() is True
    ids = slow.ids()
    assert ids[-1] == "evt_0020" and len(ids) < 21  # the newest kept, the oldest dropped
    assert ids[1:] == sorted(i or "" for i in ids[1:])


async def test_not_closing_on_terminal_keeps_the_socket_open() -> None:
    bus = EventBus()
    ws, sock, task = open_socket(bus, close_on_terminal=False)
    await wait_for(lambda: sock.idle)
    bus.publish(event(1, "completed"))
    await wait_for(lambda: len(ws.direct) == 2)
    await asyncio.sleep(0.05)
    assert not task.done() and sock.idle
    ws.incoming.put_nowait({"type": "websocket.disconnect"})
    assert await asyncio.wait_for(task, 5) is False


async def test_drain_and_deletion_reach_every_pump_through_the_hub() -> None:
    bus = EventBus()
    (a, _, a_task), (b, _, b_task) = open_socket(bus), open_socket(bus)
    await wait_for(lambda: len(a.direct) == 1 and len(b.direct) == 1)
    bus.drain()
    for task in (a_task, b_task):
        with pytest.raises(stream.Refused) as refused:
            await asyncio.wait_for(task, 5)
        assert refused.value.code == stream.CLOSE_GOING_AWAY

    bus2 = EventBus()
    c, c_sock, c_task = open_socket(bus2)
    await wait_for(lambda: c_sock.idle)
    bus2.publish_deleted(JOB)
    assert await asyncio.wait_for(c_task, 5) is True
    assert json.loads(c.direct[-1])["type"] == "job.deleted"


async def test_a_send_failing_at_once_ends_that_socket_only() -> None:
    bus = EventBus()
    (bad, bad_sock, bad_task), (good, _, good_task) = open_socket(bus), open_socket(bus)
    await wait_for(lambda: bad_sock.idle and len(good.direct) == 1)
    bad.fail = OSError("connection reset")
    bus.publish(event(1))
    with pytest.raises(OSError, match="connection reset"):
        await asyncio.wait_for(bad_task, 5)
    await wait_for(lambda: len(good.direct) == 2)
    bus.publish(event(2, "completed"))
    assert await asyncio.wait_for(good_task, 5) is True
    assert good.ids() == [None, "evt_0001", "evt_0002"]
