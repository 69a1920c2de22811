"""A command whose last act was object-store I/O exits with its own status, never an abort.

The store client's Rust runtime can still be finishing on its own threads as Python tears
itself down, which aborted the process (-6, no message) in about 19 of 30 bare runs of the
command below, each after it had done its work. The ``vidgate`` command leaves without that
teardown.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

COMMAND = """
import asyncio
import sys

import obstore
from obstore.store import LocalStore

from vidgate.cli.main import Vidgate, VersionOption

app = Vidgate()


@app.callback()
def root(version: VersionOption = False) -> None:
    pass


@app.command()
def store(directory: str, fail: bool = False) -> None:
    async def go() -> int:
        blobs = LocalStore(directory, mkdir=True)
        for i in range(3):
            await obstore.put_async(blobs, f"k{i}", b"bytes")
        return sum([len(batch) async for batch in obstore.list(blobs, None, chunk_size=100)])

    print(f"listed {asyncio.run(go())}")
    if fail:
        sys.exit(3)


app()
"""


def _run(script: Path, directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), "store", str(directory), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_that_end_on_store_io_exit_with_their_status(tmp_path: Path) -> None:
    script = tmp_path / "command.py"
    script.write_text(COMMAND)
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda n: _run(script, tmp_path / f"d{n}"), range(20)))
        failing = list(pool.map(lambda n: _run(script, tmp_path / f"f{n}", "--fail"), range(4)))
    assert [r.returncode for r in runs] == [0] * 20, [r.stderr[-300:] for r in runs if r.returncode]
    assert all(r.stdout == "listed 3\n" for r in runs)
    # A command's own status comes through, and what it printed is flushed before the exit.
    assert [(r.returncode, r.stdout) for r in failing] == [(3, "listed 3\n")] * 4, [r.stderr for r in failing]
