"""What ``KubeApi.watch`` returns: one watch request's events, plus a way to cancel it.

Why it exists: a watch is a long poll. The thread reading it sits in a socket read for as long
as the server stays quiet (up to ``timeoutSeconds``, or for ever without one). A controller that
stops must wake that thread from another one, and neither obvious tool does it: a generator
cannot be closed while another thread runs it, and closing a socket's file does not wake a
``recv`` blocked on it. Shutting the socket down does, so each adapter says how, and
``EventStream`` makes that safe to call at any moment from any thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol, Self, TypeAlias

WatchEvent: TypeAlias = tuple[str, dict[str, Any]]
"""``(type, object)`` with type ADDED / MODIFIED / DELETED / BOOKMARK."""

log = logging.getLogger(__name__)


class WatchStream(Iterator[WatchEvent], Protocol):
    """The events of one watch request, in the server's order.

    Iteration ends when the server ends the watch (``timeoutSeconds``), after ``close()`` or
    after ``cancel()``. Only the reading thread iterates and calls ``close()``; ``cancel()`` is
    for any other thread.
    """

    def close(self) -> None:
        """Stop reading and release the connection; idempotent."""

    def cancel(self) -> None:
        """Wake a reader blocked on a quiet watch and end the stream; idempotent, never raises.

        The reader's iteration ends as if the server had closed the watch (whatever the
        torn-down connection raises is swallowed); it should still call ``close()``.
        """


class EventStream:
    """A ``WatchStream`` over events parsed from one streaming response.

    The adapter supplies ``events`` (which only parses), ``interrupt`` (wakes a read blocked in
    another thread, e.g. a socket shutdown) and ``release`` (frees the response and its
    connection; called once, when the stream ends or is closed). One lock orders the last two:
    an interrupt never reaches a connection after it was released, when a pool may already
    have handed it to another request.
    """

    def __init__(
        self,
        events: Generator[WatchEvent, None, None],
        *,
        interrupt: Callable[[], None],
        release: Callable[[], None],
    ) -> None:
        self._events = events
        self._interrupt = interrupt
        self._release = release
        self._lock = threading.Lock()
        self._cancelled = False
        self._released = False

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> WatchEvent:
        if self._cancelled:
            self.close()
            raise StopIteration
        try:
            return next(self._events)
        except StopIteration:
            self.close()
            raise
        except Exception:
            self.close()
            if self._cancelled:
                # NB: the error is the interrupted connection's, i.e. the cancel's own doing.
                raise StopIteration from None
            raise

    def close(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            self._events.close()
        finally:
            self._release()

    def cancel(self) -> None:
        with self._lock:
            if self._cancelled or self._released:
                return
            self._cancelled = True
            try:
                self._interrupt()
            except Exception:  # NB: best effort; the watch's own timeout still bounds the wait.
                log.debug("could not interrupt the watch stream", exc_info=True)

    def __del__(self) -> None:
        # NB: like a generator's finally: an abandoned stream must not pin its connection.
        with contextlib.suppress(Exception):
            self.close()
