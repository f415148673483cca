"""Ctrl-C during ``fit``: noted when it comes, acted on at the end of the current minibatch.

While a run trains, the first SIGINT only sets a flag (so no minibatch and
no checkpoint write is cut in half); ``fit`` checks it after every minibatch
(after every epoch the compiled core runs whole) and raises a
``KeyboardInterrupt`` carrying the history. A second Ctrl-C interrupts at
once, as usual. Outside the main thread, or when the program installed a
SIGINT handler of its own, nothing is changed.
"""
from __future__ import annotations

import signal
import threading
from types import TracebackType
from typing import Any


class DeferredInterrupt:
    """A context in which the first Ctrl-C is deferred; ``requested`` says whether it came."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "DeferredInterrupt":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def _note(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C interrupts at once

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._installed and signal.getsignal(signal.SIGINT) == self._note:
            signal.signal(signal.SIGINT, self._previous)
        self._installed = False
