"""Leave the process once a command is done, without the interpreter's teardown.

The object store client (obstore) runs its I/O on a Rust runtime whose threads can still be
finishing a task when Python tears itself down; the process then aborts (SIGABRT, exit -6, no
message) after the command had succeeded, about one short run in three on an S3 store. Exit
handlers run and every stream is flushed first, so skipping the teardown loses nothing.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn


def status(code: object) -> int:
    """The exit status ``SystemExit(code)`` stands for, as the interpreter would give it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def exit_now(code: object) -> NoReturn:
    atexit._run_exitfuncs()  # logging's flush, temporary files, anything a library registered
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to give it
            pass
    os._exit(status(code))
