"""``POST /callbacks/{token}``: where an external service (a Clay table) hands back an item.

The token in the path is the signed ``(state id, attempt)`` the ``webhook`` handler put in
the ``callback_url`` it sent; the body is any JSON object (Clay sends the enriched row) and
becomes the step's result. Answers, in the order they are checked:

=====  ==========================================  ===================================
code   when                                        body
=====  ==========================================  ===================================
401    the token is malformed or its signature     ``{"status": "invalid_token"}``
       does not match (forged, tampered)
413    the body is larger than                     ``{"status": "too_large", ...}``
       ``callback_max_bytes`` (Content-Length or
       the bytes actually streamed)
422    the body is not JSON, not an object, is     ``{"status": "invalid_body", ...}``
       nested deeper than :data:`MAX_DEPTH`, or
       holds what cannot be stored (NaN,
       ``\\u0000``, integers beyond 64 bits)
404    no ASYNC state has that id and attempt      ``{"status": "not_found"}``
409    the state changed while the callback was    ``{"status": "conflict"}``
       being recorded; call again
503    the database is unavailable; call again     ``{"status": "unavailable"}``
200    the state is now COMPLETED                  ``{"status": "completed"}``
200    it was already completed (a no-op)          ``{"status": "duplicate"}``
200    its batch was cancelled (stores nothing)    ``{"status": "cancelled"}``
=====  ==========================================  ===================================

Only the 200 ``completed`` answer changes rows (the result, the state, waiting followers; in
one transaction). Everything that can be refused without the database (token, size, JSON) is
refused before it is touched.

**Group commit.** The endpoint does not open a transaction of its own: it hands
``(state id, attempt, payload)`` to the app's :class:`CallbackWriter` and awaits its future
(no thread is held per request). One writer thread drains the queue and lands up to
``max_group`` callbacks per transaction with set-based statements
(:func:`enrichflow.db.states.callbacks_complete`), then resolves every future with its own
outcome. A request is answered only after the transaction holding its callback committed, so a
200 means the result is durable. Two callbacks for the same state in one group: the first wins,
the second is a duplicate. When a group's transaction fails, its callbacks are landed again one
per transaction, so only the callback that cannot be stored is refused. The conductor is woken
once per group that completed something.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from enrichflow import prefect_events
from enrichflow.db.engine import now_ms
from enrichflow.db.states import CallbackOutcome, CallbackReport, callbacks_complete
from enrichflow.webhooks.signing import InvalidCallbackToken, verify_callback_token

__all__ = ["MAX_DEPTH", "CallbackWriter", "callback_writer", "router"]

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Stop the app's writer (after landing what is queued) when the server shuts down."""
    yield
    writer: CallbackWriter | None = getattr(app.state, "callback_writer", None)
    if writer is not None:
        app.state.callback_writer = None
        await run_in_threadpool(writer.close)


router = APIRouter(lifespan=_lifespan)

_STATUS_CODES = {
    CallbackOutcome.COMPLETED: 200,
    CallbackOutcome.DUPLICATE: 200,
    CallbackOutcome.NOT_FOUND: 404,
    CallbackOutcome.CONFLICT: 409,
    CallbackOutcome.CANCELLED: 200,
}


class _BadBody(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _BadBody(f"{name} is not allowed in JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _check_storable(value: Any) -> None:
    """Strings with NUL or lone surrogates cannot be stored in a Postgres JSONB value; they
    are refused on both databases alike."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _BadBody("strings must not contain \\u0000")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _BadBody("strings must not contain lone surrogates") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


MAX_DEPTH = 64
"""The deepest nesting of objects and arrays a callback body may have (the body itself is
level 1); the JSON encoder that stores results stops at a few hundred levels."""
_TOO_DEEP = f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)"


def _check_depth(value: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, walking containers without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _BadBody(_TOO_DEEP)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


_INT64 = range(-(2**63), 2**63)
_LONG_NUMBER = re.compile(rb"\d{19}")  # the fewest digits a number outside 64 bits needs


def _check_integers(value: Any) -> None:
    """Integers the database's JSON encoder can store are 64-bit; refuse larger ones."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and item not in _INT64:
            raise _BadBody("integers must fit in 64 bits (send larger ones as strings)")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_payload(body: bytes) -> dict[str, Any]:
    """The callback body as a JSON object; :class:`ValueError` saying why it is not one."""
    try:
        # what json.loads does, with one decoder made once instead of one per call
        value = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except _BadBody:
        raise
    except RecursionError:
        raise _BadBody(_TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _BadBody(f"the body is not JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise _BadBody(f"the body must be a JSON object, not {type(value).__name__}")
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH:  # fewer brackets cannot nest deeper
        _check_depth(value)
    if _LONG_NUMBER.search(body):
        _check_integers(value)
    if b"\\u" in body:
        _check_storable(value)
    return value


@dataclass(slots=True)
class _Job:
    state_id: int
    attempt: int
    payload: dict[str, Any]
    future: Future[CallbackReport] | None = None
    """Set by :meth:`CallbackWriter.submit`."""
    waiter: asyncio.Future[CallbackReport] | None = None
    """Set by :meth:`CallbackWriter.land`, resolved on ``loop``."""
    loop: asyncio.AbstractEventLoop | None = None


_Outcome = CallbackReport | BaseException


def _resolve(pairs: list[tuple[asyncio.Future[CallbackReport], _Outcome]]) -> None:
    """On the event loop: answer the waiters of one group (one call per group, not one per
    callback)."""
    for waiter, outcome in pairs:
        if waiter.done():  # the request was cancelled
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


class CallbackWriter:
    """The group committer: :meth:`submit` queues a callback and returns a future of its
    :class:`CallbackReport`; one thread lands the queue in transactions of up to ``max_group``
    callbacks and resolves each future once that transaction committed (or with the exception
    that kept its callback from being stored: :class:`DataError`, :class:`OperationalError`).

    The thread keeps one connection checked out (no pool pre-ping per group); after an error
    the connection is dropped and the next group connects afresh. It starts on the first
    submit, exits after ``idle_seconds`` without work (and is started again when needed), and
    :meth:`close` lands what is queued before it returns.
    """

    def __init__(
        self,
        engine: Engine,
        wake: Callable[[], None],
        max_group: int = 200,
        idle_seconds: float = 30.0,
    ) -> None:
        self.engine = engine
        self.wake = wake
        self.max_group = max_group
        self.idle_seconds = idle_seconds
        self.groups = 0
        """Transactions committed (for tests and the benchmark)."""
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._conn: Connection | None = None

    def submit(
        self, state_id: int, attempt: int, payload: dict[str, Any]
    ) -> Future[CallbackReport]:
        """Queue a callback; the future resolves after its transaction committed."""
        future: Future[CallbackReport] = Future()
        self._enqueue(_Job(state_id, attempt, payload, future=future))
        return future

    async def land(self, state_id: int, attempt: int, payload: dict[str, Any]) -> CallbackReport:
        """:meth:`submit` for a coroutine: awaits the outcome without holding a thread; the
        writer answers all the waiters of a group on their loop with one thread-safe call."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[CallbackReport] = loop.create_future()
        self._enqueue(_Job(state_id, attempt, payload, waiter=waiter, loop=loop))
        return await waiter

    def _enqueue(self, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the callback writer is closed")
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="enrichflow-callback-writer", daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Land what is queued, stop the thread, release the connection."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ the writer thread

    def _take(self) -> list[_Job] | None:
        """The next group; ``None`` when the thread should exit (closed or idle)."""
        with self._cond:
            while not self._queue:
                if self._closed or not self._cond.wait(self.idle_seconds):
                    if self._queue:
                        break
                    self._thread = None
                    return None
            group: list[_Job] = []
            while self._queue and len(group) < self.max_group:
                job = self._queue.popleft()
                # a future cancelled before its turn (the request went away) is skipped
                if job.future is None or job.future.set_running_or_notify_cancel():
                    group.append(job)
            return group

    def _run(self) -> None:
        try:
            while (group := self._take()) is not None:
                if group:
                    self._deliver(group, self._land(group))
        finally:
            self._disconnect()

    def _land(self, group: Sequence[_Job]) -> list[_Outcome]:
        """Each job's report, or the exception that kept it from being stored."""
        try:
            reports = self._transaction(group)
        except Exception as exc:
            self._disconnect()
            if len(group) > 1:
                log.warning(
                    "a group of %d callbacks failed (%s); landing them one by one",
                    len(group),
                    type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__,
                )
                return [self._land([job])[0] for job in group]
            return [exc] * len(group)
        return list(reports)

    def _deliver(self, group: Sequence[_Job], outcomes: Sequence[_Outcome]) -> None:
        """Answer every job (after its transaction committed), then wake the conductor once
        when anything completed."""
        completed = False
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, _Outcome]]] = {}
        for job, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, CallbackReport) and outcome.outcome is CallbackOutcome.COMPLETED:
                completed = True
                if outcome.followers:
                    log.info(
                        "state %s completed with %d follower(s)", job.state_id, outcome.followers
                    )
            if job.future is not None:
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)
            elif job.loop is not None and job.waiter is not None:
                by_loop.setdefault(job.loop, []).append((job.waiter, outcome))
        for loop, pairs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, pairs)
        if completed:
            try:
                self.wake()
            except Exception:
                log.exception("waking the conductor failed")

    def _transaction(self, group: Sequence[_Job]) -> list[CallbackReport]:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        with self._conn.begin():
            reports = callbacks_complete(
                self._conn, [(j.state_id, j.attempt, j.payload) for j in group], now_ms()
            )
        self.groups += 1
        return reports

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


_writer_lock = threading.Lock()


def callback_writer(app: Any) -> CallbackWriter:
    """The app's writer, created on first use over ``app.state.engine``; it wakes the
    conductor through ``app.state.wake``."""
    state = app.state
    writer: CallbackWriter | None = getattr(state, "callback_writer", None)
    if writer is None:
        with _writer_lock:
            writer = getattr(state, "callback_writer", None)
            if writer is None:
                writer = CallbackWriter(state.engine, lambda: state.wake())
                state.callback_writer = writer
    return writer


def _json_answer(body: dict[str, Any], code: int) -> tuple[int, bytes]:
    return code, json.dumps(body, separators=(",", ":")).encode()


_ANSWERS = {
    outcome: _json_answer({"status": outcome.value}, code)
    for outcome, code in _STATUS_CODES.items()
}
_INVALID_TOKEN = _json_answer({"status": "invalid_token"}, 401)
_UNSTORABLE = _json_answer(
    {"status": "invalid_body", "detail": "the payload cannot be stored"}, 422
)
_UNAVAILABLE = _json_answer({"status": "unavailable"}, 503)
_JSON_HEADERS = [(b"content-type", b"application/json")]
_RETRY_HEADERS = [*_JSON_HEADERS, (b"retry-after", b"1")]


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes (by its
    Content-Length, or by the bytes actually streamed)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


class _ClientGone(Exception):
    pass


async def _callback_answer(
    app: Any, token: str, scope: Scope, receive: Receive
) -> tuple[int, bytes]:
    state = app.state
    settings = state.settings
    try:
        state_id, attempt = verify_callback_token(token, state.secret_key)
    except InvalidCallbackToken:
        return _INVALID_TOKEN
    limit = int(settings.callback_max_bytes)
    body = await _read_body(scope, receive, limit)
    if body is None:
        return _json_answer({"status": "too_large", "limit_bytes": limit}, 413)
    try:
        payload = parse_payload(body)
    except ValueError as exc:
        return _json_answer({"status": "invalid_body", "detail": str(exc)}, 422)
    try:
        report = await callback_writer(app).land(state_id, attempt, payload)
    except DataError as exc:
        log.warning("callback for state %s: the payload cannot be stored: %s", state_id, exc.orig)
        return _UNSTORABLE
    except OperationalError as exc:
        log.error("callback for state %s: database unavailable: %s", state_id, exc.orig)
        return _UNAVAILABLE
    prefect_events.callback_received(state_id, report.outcome)
    return _ANSWERS[report.outcome]


async def receive_callback(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /callbacks/{token}``: land one callback (see the module docstring for every
    answer). A bare ASGI endpoint: FastAPI's request/response machinery (dependency solving,
    ``Request`` and ``Response`` objects) cost more than the whole callback otherwise does; the
    body is read as it streams in, and the awaited future holds no thread."""
    try:
        code, body = await _callback_answer(
            scope["app"], scope["path_params"]["token"], scope, receive
        )
    except _ClientGone:
        return
    headers = _RETRY_HEADERS if code == 503 else _JSON_HEADERS
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _AsgiEndpoint:
    """Starlette serves an endpoint that is not a function as a plain ASGI app."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


router.routes.append(Route("/callbacks/{token}", _AsgiEndpoint(receive_callback), methods=["POST"]))
