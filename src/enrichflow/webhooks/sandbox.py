"""A local stand-in for a Clay table, for demos and end-to-end tests.

``POST /webhook/{table}`` takes a JSON row as the ``webhook`` handler sends it (with a
``callback_url``), answers 200 at once and, after ``delay_seconds``, POSTs an enriched JSON
object to the row's ``callback_url``, retrying a few times while the receiver is down or
answers 5xx. The enrichment is deterministic (derived from a hash of the row's identity):

* a table whose name contains ``person``: ``{"sandbox": true, "person_name": …,
  "linkedin_url": …, "headline": …, "positions": [{"company": …, "title": …,
  "start": "2019-01", "end": null}, {…, "end": "2018-12"}]}``
* any other table: ``{"sandbox": true, "company_name": …, "company_domain": …,
  "employees": <int>, "industry": …, "founded": <int>, "description": "Sandbox data …"}``

Both carry ``item_id`` and ``table`` from the request. Fault injection, deterministic for a
given ``seed`` and request order (three draws from ``random.Random(seed)`` per accepted
request, a fourth with ``loss_rate``): ``fail_rate`` answers 500 and never calls back,
``duplicate_rate`` calls back twice, ``late_rate`` of the rows (all by default) wait
``late_seconds`` more, and ``loss_rate`` of the accepted rows are never called back (a lost
callback). With ``auth_token`` the ``x-clay-webhook-auth`` header must match (401 otherwise).
With ``refuse_status`` every row is answered with that status and never called back (counted
as ``refused``), as Clay answers a deleted table's webhook (404) or a wrong token (401).

Limits, per webhook (table), as Clay has them:

* ``rate_per_second`` (and ``burst``): a token bucket; a row over it is answered 429 with a
  ``Retry-After`` header (whole seconds until a token is due) and is not counted.
* ``max_submissions``: the webhook's lifetime limit of accepted rows; every row after it is
  answered 403 ``{"error": "... submission limit ..."}`` and never called back.

``GET /healthz`` answers ``{"ok": true}``; ``GET /stats`` the counters.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["SandboxStats", "create_sandbox_app", "enrich_row", "run_sandbox"]

AUTH_HEADER = "x-clay-webhook-auth"

_INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Logistics",
    "Education",
    "Energy",
)
_TITLES = (
    "Head of Sales",
    "VP Marketing",
    "Chief Technology Officer",
    "Operations Manager",
    "Account Executive",
    "Product Manager",
)
_PREVIOUS = ("Initech", "Globex", "Umbrella Analytics", "Hooli", "Vandelay Industries")


@dataclass(slots=True)
class SandboxStats:
    """Counters shown by ``GET /stats``."""

    received: int = 0
    accepted: int = 0
    failed_injected: int = 0
    rejected_auth: int = 0
    rejected_bad_row: int = 0
    late: int = 0
    lost: int = 0
    rate_limited: int = 0
    over_limit: int = 0
    refused: int = 0
    duplicates: int = 0
    called_back: int = 0
    callback_rejected: int = 0
    callback_failed: int = 0
    pending: int = 0


@dataclass
class _Bucket:
    """One webhook's token bucket (the sandbox runs on one event loop: no lock needed)."""

    rate: float
    burst: int
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def wait(self) -> float:
        """Take a token (0.0), or the seconds until one is due, taking nothing."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class _Sandbox:
    delay_seconds: float
    fail_rate: float
    duplicate_rate: float
    late_seconds: float
    late_rate: float
    auth_token: str | None
    callback_attempts: int
    callback_timeout: float
    rng: random.Random
    loss_rate: float = 0.0
    rate_per_second: float | None = None
    burst: int = 1
    max_submissions: int | None = None
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    submissions: dict[str, int] = field(default_factory=dict)
    stats: SandboxStats = field(default_factory=SandboxStats)
    client: httpx.AsyncClient | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def rate_wait(self, table: str) -> float:
        """0.0 when ``table``'s webhook takes the row now, else the seconds until it would."""
        if self.rate_per_second is None:
            return 0.0
        bucket = self.buckets.get(table)
        if bucket is None:
            bucket = self.buckets[table] = _Bucket(
                self.rate_per_second, self.burst, float(self.burst)
            )
        return bucket.wait()

    def over_limit(self, table: str) -> bool:
        """Count one submission to ``table``'s webhook; whether it is past the lifetime limit."""
        if self.max_submissions is None:
            return False
        self.submissions[table] = self.submissions.get(table, 0) + 1
        return self.submissions[table] > self.max_submissions

    async def deliver(self, url: str, body: dict[str, Any], delay: float, copies: int) -> None:
        self.stats.pending += 1
        try:
            await asyncio.sleep(delay)
            for _ in range(copies):
                await self._post(url, body)
        finally:
            self.stats.pending -= 1

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        assert self.client is not None
        for attempt in range(self.callback_attempts):
            try:
                response = await self.client.post(url, json=body)
            except httpx.HTTPError:
                pass
            else:
                if response.status_code < 300:
                    self.stats.called_back += 1
                    return
                if response.status_code < 500 and response.status_code not in (408, 429):
                    self.stats.callback_rejected += 1
                    return
            if attempt + 1 < self.callback_attempts:
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        self.stats.callback_failed += 1


def _hash_int(*parts: Any) -> int:
    text = json.dumps(parts, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


def _field(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    if value in (None, ""):
        original = row.get("original_data")
        if isinstance(original, dict):
            value = original.get(name)
    return None if value == "" else value


def enrich_row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The deterministic enrichment the sandbox sends back for ``row`` of ``table``."""
    company = _field(row, "company_name")
    domain = _field(row, "company_domain")
    if "person" in table.lower():
        person = _field(row, "person_name")
        linkedin = _field(row, "linkedin_url")
        h = _hash_int("person", linkedin or person or _field(row, "email") or row.get("item_id"))
        title = _field(row, "title") or _TITLES[h % len(_TITLES)]
        current = company or "Sandbox Corp"
        previous = _PREVIOUS[(h >> 8) % len(_PREVIOUS)]
        return {
            "sandbox": True,
            "item_id": row.get("item_id"),
            "table": table,
            "person_name": person,
            "linkedin_url": linkedin,
            "headline": f"{title} at {current}",
            "positions": [
                {"company": current, "title": title, "start": "2019-01", "end": None},
                {
                    "company": previous,
                    "title": _TITLES[(h >> 16) % len(_TITLES)],
                    "start": "2015-06",
                    "end": "2018-12",
                },
            ],
        }
    h = _hash_int("company", domain or company or row.get("item_id"))
    industry = _field(row, "industry") or _INDUSTRIES[h % len(_INDUSTRIES)]
    employees = 5 + (h >> 8) % 20_000
    label = company or domain or "this company"
    return {
        "sandbox": True,
        "item_id": row.get("item_id"),
        "table": table,
        "company_name": company,
        "company_domain": domain,
        "employees": employees,
        "industry": industry,
        "founded": 1950 + (h >> 24) % 74,
        "description": f"Sandbox data for {label}: a {industry.lower()} company "
        f"with about {employees:,} employees.",
    }


def create_sandbox_app(
    delay_seconds: float = 0.5,
    fail_rate: float = 0.0,
    duplicate_rate: float = 0.0,
    late_seconds: float = 0.0,
    seed: int = 0,
    *,
    late_rate: float = 1.0,
    auth_token: str | None = None,
    callback_attempts: int = 5,
    callback_timeout: float = 10.0,
    loss_rate: float = 0.0,
    rate_per_second: float | None = None,
    burst: int = 1,
    max_submissions: int | None = None,
    refuse_status: int | None = None,
) -> FastAPI:
    """The sandbox service (see the module docstring)."""
    rates = (
        ("fail_rate", fail_rate),
        ("duplicate_rate", duplicate_rate),
        ("late_rate", late_rate),
        ("loss_rate", loss_rate),
    )
    for name, rate in rates:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if rate_per_second is not None and not (math.isfinite(rate_per_second) and rate_per_second > 0):
        raise ValueError("rate_per_second must be a positive number")
    if burst < 1:
        raise ValueError("burst must be at least 1")
    if max_submissions is not None and max_submissions < 1:
        raise ValueError("max_submissions must be at least 1")
    sandbox = _Sandbox(
        delay_seconds=max(delay_seconds, 0.0),
        fail_rate=fail_rate,
        duplicate_rate=duplicate_rate,
        late_seconds=max(late_seconds, 0.0),
        late_rate=late_rate,
        auth_token=auth_token or None,
        callback_attempts=max(callback_attempts, 1),
        callback_timeout=callback_timeout,
        rng=random.Random(seed),
        loss_rate=loss_rate,
        rate_per_second=rate_per_second,
        burst=burst,
        max_submissions=max_submissions,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=callback_timeout) as client:
            sandbox.client = client
            try:
                yield
            finally:
                for task in list(sandbox.tasks):
                    task.cancel()
                await asyncio.gather(*sandbox.tasks, return_exceptions=True)
                sandbox.client = None

    app = FastAPI(title="enrichflow Clay sandbox", lifespan=lifespan)
    app.state.sandbox = sandbox

    @app.post("/webhook/{table}")
    async def webhook(table: str, request: Request) -> JSONResponse:
        sandbox.stats.received += 1
        if refuse_status is not None:
            sandbox.stats.refused += 1
            return JSONResponse({"error": "sandbox: refused"}, status_code=refuse_status)
        if sandbox.auth_token is not None and not hmac.compare_digest(
            request.headers.get(AUTH_HEADER, "").encode("utf-8"),
            sandbox.auth_token.encode("utf-8"),
        ):
            sandbox.stats.rejected_auth += 1
            return JSONResponse({"error": "bad or missing x-clay-webhook-auth"}, status_code=401)
        try:
            row = await request.json()
        except ValueError:
            row = None
        callback = row.get("callback_url") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(callback, str) or not callback:
            sandbox.stats.rejected_bad_row += 1
            return JSONResponse(
                {"error": "expected a JSON object with a callback_url"}, status_code=400
            )
        wait = sandbox.rate_wait(table)
        if wait > 0:
            sandbox.stats.rate_limited += 1
            return JSONResponse(
                {"error": "rate limited"},
                status_code=429,
                headers={"retry-after": str(math.ceil(wait))},
            )
        if sandbox.over_limit(table):
            sandbox.stats.over_limit += 1
            return JSONResponse(
                {"error": "this webhook has reached its submission limit"}, status_code=403
            )
        fail_draw, duplicate_draw, late_draw = (sandbox.rng.random() for _ in range(3))
        if fail_draw < sandbox.fail_rate:
            sandbox.stats.failed_injected += 1
            return JSONResponse({"error": "sandbox: injected failure"}, status_code=500)
        sandbox.stats.accepted += 1
        if sandbox.loss_rate > 0 and sandbox.rng.random() < sandbox.loss_rate:
            sandbox.stats.lost += 1
            return JSONResponse({"status": "accepted", "table": table})
        delay = sandbox.delay_seconds
        if sandbox.late_seconds > 0 and late_draw < sandbox.late_rate:
            sandbox.stats.late += 1
            delay += sandbox.late_seconds
        copies = 1
        if duplicate_draw < sandbox.duplicate_rate:
            sandbox.stats.duplicates += 1
            copies = 2
        task = asyncio.create_task(sandbox.deliver(callback, enrich_row(table, row), delay, copies))
        sandbox.tasks.add(task)
        task.add_done_callback(sandbox.tasks.discard)
        return JSONResponse({"status": "accepted", "table": table})

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return asdict(sandbox.stats)

    return app


def run_sandbox(host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Serve :func:`create_sandbox_app` ``(**options)`` with uvicorn until interrupted."""
    uvicorn.run(create_sandbox_app(**options), host=host, port=port, log_level="info")
