"""``enrichflow doctor``: a preflight of everything a run needs, each check (name, ok, detail).

A dispatch that fails silently for lack of worker credentials while every flow run reports
success is the costliest failure, so these checks make such a set-up fail loudly before
anything is launched:

* the database is reachable and migrated to the head revision;
* every step plugin imports, and every registry row's handler exists in this installation;
* every saved pipeline's steps exist in the registry of its workstream;
* every ASYNC workflow in a client's saved pipeline has a ``webhook_url`` for that client
  and workstream;
* the public base URL for callbacks is set when ASYNC steps are used;
* where the signing key comes from (environment or database), failing on a weak one;
* the executor's credentials are present (Modal tokens for ``modal``);
* no client's Clay workflow has only webhook URLs at 90% of their lifetime limit or more
  (a URL that was replaced and is no longer configured does not count);
* (information, never failing) whether large uploads skip per-row foreign-key checks.

:func:`preflight_batch` runs the checks that concern one batch about to be launched: its
steps, its client's configs for them, and whether each Clay step has a webhook URL with room
left (the URL the sender will use: the first one below the limit).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Connection, Engine

from enrichflow.catalog.client_configs import client_configs_by_target
from enrichflow.catalog.pipelines import pipelines_list
from enrichflow.catalog.registry import RegistryRow, registry_get_many, registry_list
from enrichflow.catalog.validation import webhook_options, webhook_urls
from enrichflow.config import Settings
from enrichflow.db.bulk import may_skip_foreign_key_checks
from enrichflow.db.engine import is_postgres
from enrichflow.db.migrate import current_revision, head_revision
from enrichflow.errors import ConfigError
from enrichflow.secret_key import (
    MIN_KEY_BYTES,
    WeakSecretKey,
    check_key_strength,
    stored_secret_key,
)
from enrichflow.states import StepType
from enrichflow.steps.plugins import loaded_plugins
from enrichflow.steps.registry import handler_names, has_handler
from enrichflow.webhooks import callback_base
from enrichflow.webhooks.ledger import has_room, submissions_by_key, url_key
from enrichflow.webhooks.redact import redact_url

__all__ = ["Check", "failing", "modal_credentials", "preflight_batch", "run_checks"]

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
WARN_FRACTION = 0.9
"""Share of a webhook URL's lifetime limit from which the doctor asks for a fresh one."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def failing(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def check_database(conn: Connection) -> Check:
    current = current_revision(conn)
    head = head_revision()
    if current == head:
        return Check("database", True, f"reachable, migrated to {head}")
    if current is None:
        return Check("database", False, "reachable but not initialised: run `enrichflow init`")
    return Check(
        "database",
        False,
        f"at revision {current}, this version needs {head}: run `enrichflow init` to migrate",
    )


def check_handlers(conn: Connection) -> Check:
    rows = registry_list(conn)
    try:
        known = set(handler_names())
    except ConfigError as exc:  # a step plugin that does not import
        return Check("handlers", False, str(exc))
    missing = [
        f"{r.workstream_slug}/{r.slug} -> {r.handler!r}" for r in rows if r.handler not in known
    ]
    if missing:
        return Check("handlers", False, "no such handler: " + "; ".join(missing))
    plugins = ", ".join(p.module for p in loaded_plugins()) or "none"
    return Check(
        "handlers", True, f"{len(rows)} registry row(s), every handler exists; plugins: {plugins}"
    )


def _registry(conn: Connection) -> dict[tuple[str, str], str]:
    """(workstream, slug) -> type."""
    return {(r.workstream_slug, r.slug): r.type for r in registry_list(conn)}


def _pipelines(conn: Connection) -> list[tuple[str, str, str, list[str]]]:
    """(client, workstream, pipeline, steps) of every saved pipeline, by client and name."""
    rows = sorted(pipelines_list(conn), key=lambda p: (p["client"], p["name"]))
    return [(p["client"], p["workstream"], p["name"], p["steps"]) for p in rows]


def check_pipelines(conn: Connection) -> Check:
    registry = _registry(conn)
    pipelines = _pipelines(conn)
    bad = [
        f"{client}/{name} ({workstream}): {slug!r}"
        for client, workstream, name, steps in pipelines
        for slug in steps
        if (workstream, slug) not in registry
    ]
    if bad:
        return Check("pipelines", False, "unknown step in saved pipeline: " + "; ".join(bad))
    return Check("pipelines", True, f"{len(pipelines)} saved pipeline(s), every step exists")


def _missing_webhook(
    configs: Mapping[tuple[str, str, str], Mapping[str, Any]],
    client: str,
    workstream: str,
    slug: str,
) -> str | None:
    url = configs.get((client, slug, workstream), {}).get("webhook_url")
    if url:
        return None
    return (
        f"client {client!r} has no webhook_url for {slug} in {workstream} "
        f"(enrichflow config set {client} {slug} webhook_url=<url> --workstream {workstream})"
    )


def check_async_configs(conn: Connection) -> tuple[Check, bool]:
    """The check, and whether any saved pipeline uses an ASYNC step."""
    registry = _registry(conn)
    configs = client_configs_by_target(conn)
    problems: list[str] = []
    used = 0
    for client, workstream, _name, steps in _pipelines(conn):
        for slug in steps:
            if registry.get((workstream, slug)) != StepType.ASYNC.value:
                continue
            used += 1
            problem = _missing_webhook(configs, client, workstream, slug)
            if problem and problem not in problems:
                problems.append(problem)
    if problems:
        return Check("async configs", False, "; ".join(problems)), True
    if not used:
        return Check("async configs", True, "no saved pipeline uses an ASYNC step"), False
    return Check("async configs", True, f"{used} ASYNC step use(s), each configured"), True


def check_public_url(
    settings: Settings, async_used: bool, targets: Iterable[callback_base.WebhookTarget] = ()
) -> Check:
    """Fails when ASYNC steps are used and ENRICHFLOW_PUBLIC_URL is unset, or when one of
    ``targets`` (the Clay webhooks that would be sent to) could not call it back."""
    if not async_used:
        return Check("public url", True, "not needed: no ASYNC steps")
    url = settings.public_url
    if not url:
        return Check(
            "public url",
            False,
            "ASYNC steps need ENRICHFLOW_PUBLIC_URL, the base URL Clay calls back "
            "(unset: nothing would be sent to Clay, since it could not call back)",
        )
    problems = callback_base.targets_problems(url, targets)
    if problems:
        return Check("public url", False, "; ".join(problems))
    host = urlparse(url).hostname or ""
    if host in LOOPBACK_HOSTS:
        return Check("public url", True, f"{url} (loopback: only local senders can call back)")
    return Check("public url", True, url)


def check_secret_key(settings: Settings, conn: Connection | None) -> Check:
    """Where the signing key comes from; a key shorter than 32 bytes fails. Reads only: the
    first ``run`` or ``serve`` makes the database's key."""
    if settings.secret_key is not None:
        try:
            check_key_strength(settings.secret_key.get_secret_value())
        except WeakSecretKey as exc:
            return Check("secret key", False, str(exc))
        return Check("secret key", True, "from the environment (ENRICHFLOW_SECRET_KEY)")
    if conn is None:
        return Check("secret key", False, "unset, and the database cannot be read to find one")
    stored = stored_secret_key(conn)
    if stored is None:
        return Check(
            "secret key",
            True,
            "unset: the first `run` or `serve` generates a random one in the database",
        )
    if len(stored.encode("utf-8")) < MIN_KEY_BYTES:
        return Check("secret key", False, "the database's key is too short: delete it and restart")
    return Check("secret key", True, "from the database (generated; shared by every process)")


def modal_credentials(environ: Mapping[str, str] | None = None, home: Path | None = None) -> str:
    """Where Modal credentials come from, or '' when there are none."""
    environ = os.environ if environ is None else environ
    if environ.get("MODAL_TOKEN_ID") and environ.get("MODAL_TOKEN_SECRET"):
        return "MODAL_TOKEN_ID / MODAL_TOKEN_SECRET"
    config = Path(environ.get("MODAL_CONFIG_PATH") or (home or Path.home()) / ".modal.toml")
    if config.is_file() and "token_id" in config.read_text(errors="replace"):
        return str(config)
    return ""


def check_executor(
    settings: Settings,
    executor: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Check:
    name = executor or settings.executor
    if name == "local":
        return Check("executor", True, f"local thread pool ({settings.workers} workers)")
    if name == "modal":
        source = modal_credentials(environ, home)
        if not source:
            return Check(
                "executor",
                False,
                "modal: no credentials (set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, or run "
                "`modal token new` for ~/.modal.toml); chunks could not be dispatched",
            )
        return Check(
            "executor", True, f"modal app {settings.modal_app!r}, credentials from {source}"
        )
    return Check("executor", False, f"unknown executor {name!r} (local or modal)")


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One client's Clay workflow: its URLs in the order the sender uses them, its limit."""

    client: str
    workflow: str
    workstream: str
    urls: list[str]
    limit: int

    def usage(self, counts: Mapping[str, int]) -> str:
        return ", ".join(
            f"#{n} {redact_url(url)} {counts.get(url_key(url), 0):,}/{self.limit:,}"
            for n, url in enumerate(self.urls, 1)
        )

    def add_url_command(self) -> str:
        return (
            f"enrichflow config set {self.client} {self.workflow} --workstream {self.workstream} "
            "'webhook_url+=<fresh webhook url>'"
        )


def _webhook_target(
    client: str, row: RegistryRow, config: Mapping[str, Any]
) -> WebhookTarget | Check | None:
    """The target, a failing check when its options or URLs are unusable, None without URLs."""
    where = f"client {client!r}, workflow {row.slug!r} in {row.workstream_slug!r}"
    try:
        limit = webhook_options(row.config).max_submissions
        urls = webhook_urls(config)
    except ConfigError as exc:
        return Check("async configs", False, f"{where}: {exc}")
    if not urls:
        return None
    return WebhookTarget(client, row.slug, row.workstream_slug, urls, limit)


def _counts(conn: Connection, targets: Iterable[WebhookTarget]) -> dict[str, int]:
    return submissions_by_key(conn, (url_key(u) for t in targets for u in t.urls))


def check_webhook_sources(conn: Connection) -> Check:
    """Fails when a client's Clay workflow has no configured URL below 90% of its limit."""
    rows = {(r.workstream_slug, r.slug): r for r in registry_list(conn) if r.handler == "webhook"}
    targets: list[WebhookTarget] = []
    for (client, workflow, workstream), config in sorted(client_configs_by_target(conn).items()):
        row = rows.get((workstream, workflow))
        found = _webhook_target(client, row, config) if row is not None else None
        if isinstance(found, WebhookTarget):
            targets.append(found)
    counts = _counts(conn, targets)
    filling = [
        t
        for t in targets
        if not any(has_room(counts[url_key(u)], math.ceil(t.limit * WARN_FRACTION)) for u in t.urls)
    ]
    if filling:
        listed = "; ".join(
            f"client {t.client!r}, workflow {t.workflow!r}: {t.usage(counts)} "
            f"(add a fresh URL: {t.add_url_command()})"
            for t in filling
        )
        return Check(
            "clay sources",
            False,
            f"{len(filling)} Clay workflow(s) whose every webhook URL is at 90% of its "
            f"lifetime limit or more: {listed}",
        )
    return Check(
        "clay sources",
        True,
        f"{len(targets)} configured Clay workflow(s), each with a webhook URL below 90% of its limit",
    )


def check_bulk_loads(conn: Connection) -> Check:
    """How ingest and launch load many rows (informational: both ways give the same rows)."""
    if not is_postgres(conn):
        return Check("bulk loads", True, "SQLite: foreign keys are checked as rows are written")
    if may_skip_foreign_key_checks(conn):
        return Check(
            "bulk loads", True, "fast: new rows skip per-row foreign-key checks (docs/deploy.md)"
        )
    return Check(
        "bulk loads",
        True,
        "checked row by row: this role may not set session_replication_role, so a large "
        "ingest and launch take up to twice as long (docs/deploy.md)",
    )


def run_checks(engine: Engine, settings: Settings, executor: str | None = None) -> list[Check]:
    """Every check; a database that cannot be reached fails the checks that need it."""
    checks: list[Check] = []
    try:
        with engine.connect() as conn:
            database = check_database(conn)
            checks.append(database)
            if database.ok:
                checks.append(check_handlers(conn))
                checks.append(check_pipelines(conn))
                async_check, async_used = check_async_configs(conn)
                checks.append(async_check)
                targets = callback_base.configured_webhook_targets(conn)
                checks.append(check_public_url(settings, async_used or bool(targets), targets))
                checks.append(check_secret_key(settings, conn))
                checks.append(check_webhook_sources(conn))
                checks.append(check_bulk_loads(conn))
    except Exception as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        checks.append(
            Check(
                "database",
                False,
                f"cannot reach {engine.url.render_as_string(hide_password=True)}"
                f": {first[0] if first else type(exc).__name__}",
            )
        )
    if not any(c.name == "secret key" for c in checks):
        checks.append(check_secret_key(settings, None))
    checks.append(check_executor(settings, executor))
    return checks


def preflight_batch(
    conn: Connection,
    client: str,
    workstream: str,
    steps: Sequence[Any],
    settings: Settings | None = None,
    executor: str | None = None,
) -> list[Check]:
    """The failing checks for a batch about to be launched (empty: go ahead).

    ``steps``: the registry rows of a :class:`enrichflow.launch.LaunchPlan` (anything with
    ``slug``, ``type`` and ``handler``), or plain slugs, which are looked up in the registry."""
    from enrichflow.config import get_settings

    settings = settings or get_settings()
    named = [step for step in steps if isinstance(step, str)]
    known = registry_get_many(conn, workstream, named) if named else {}
    configs = client_configs_by_target(conn)
    checks: list[Check] = []
    targets: list[WebhookTarget] = []
    sent_to: list[callback_base.WebhookTarget] = []
    async_used = False
    for step in steps:
        row = known.get(step) if isinstance(step, str) else step
        if row is None:
            checks.append(Check("steps", False, f"unknown step {step!r} in {workstream}"))
            continue
        if not isinstance(step, str) and not has_handler(row.handler):
            checks.append(Check("handlers", False, f"{row.slug}: no handler named {row.handler!r}"))
        if row.type != StepType.ASYNC.value:
            continue
        async_used = True
        problem = _missing_webhook(configs, client, workstream, row.slug)
        if problem:
            checks.append(Check("async configs", False, problem))
        elif row.handler == "webhook":
            config = configs.get((client, row.slug, workstream), {})
            found = _webhook_target(client, row, config)
            if isinstance(found, Check):
                checks.append(found)
            elif found is not None:
                targets.append(found)
                sent_to.extend(
                    callback_base.WebhookTarget(client, row.slug, workstream, url)
                    for url in found.urls
                )
    checks.extend(_full_targets(conn, targets))
    checks.append(check_public_url(settings, async_used, sent_to))
    checks.append(check_executor(settings, executor))
    return failing(checks)


def _full_targets(conn: Connection, targets: list[WebhookTarget]) -> list[Check]:
    """A failing check for each of the batch's Clay steps whose every URL is full: only the
    client's own URLs for the steps it runs are read, so one full URL blocks nothing else."""
    counts = _counts(conn, targets)
    return [
        Check(
            "clay sources",
            False,
            f"client {t.client!r}, workflow {t.workflow!r} in {t.workstream!r}: every webhook "
            f"URL ({len(t.urls)}) has reached its {t.limit:,} submission limit ({t.usage(counts)}); "
            f"create a fresh webhook on the Clay table and add it with: {t.add_url_command()}",
        )
        for t in targets
        if not any(has_room(counts[url_key(u)], t.limit) for u in t.urls)
    ]
