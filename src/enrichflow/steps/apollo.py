"""Built-in SYNC chunk steps that write the relational tables of the Apollo workstream.

* ``split_raw_apollo_scrape_data_into_two_tables``: one ``companies`` row per company of a batch
  (keyed on the registrable domain, else the normalized name) and one ``people`` row per item,
  linked to its company.
* ``consolidate_final_leads``: one ``final_leads`` row per item from the normalized values and
  every enrichment result, ``person_work_history`` rows from results that carry positions, and
  the item's ``people`` row refreshed with the normalized person values.

Both take a whole chunk and write it with a few set-based statements in one transaction. Every
write is an ``INSERT ... ON CONFLICT`` on a unique key, so a re-run, a retry or a second chunk
naming the same company never duplicates a row; company keys are written in sorted order so two
chunks inserting the same companies at once on Postgres wait on each other instead of
deadlocking, and the ids are read back with a ``SELECT`` after the upsert (which sees a row
another transaction committed while we waited on it). The split sends only the companies a
chunk adds or fills: those this process already committed unchanged keep their remembered
id (``_StoredCompanies``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, text
from sqlalchemy.schema import Table

from enrichflow.db import jsoncodec
from enrichflow.db.dialect import id_in, sqlite_rows_per_statement
from enrichflow.db.engine import is_postgres, reading
from enrichflow.db.models import Company, FinalLead, Person, PersonWorkHistory
from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.company import normalize_company_name
from enrichflow.normalize.contact import normalize_email
from enrichflow.normalize.core import PHONE_FIELDS, normalize_core_values, person_place
from enrichflow.normalize.domain import company_domain
from enrichflow.normalize.geo import country_code
from enrichflow.normalize.linkedin import (
    normalize_linkedin_company_url,
)
from enrichflow.normalize.numbers import parse_int_amount
from enrichflow.steps.base import JSON, Outcome, StepContext
from enrichflow.steps.registry import chunk_handler

SPLIT = "split_raw_apollo_scrape_data_into_two_tables"
CONSOLIDATE = "consolidate_final_leads"
NAME_STEP = "normalize_company_name"
DOMAIN_STEP = "normalize_company_domain"
CORE_STEP = "normalize_all_core_values"
BUILTIN_STEPS = frozenset({SPLIT, CONSOLIDATE, NAME_STEP, DOMAIN_STEP, CORE_STEP, "noop"})
"""Steps whose results are not enrichment: they are the consolidated columns themselves."""

companies = cast(Table, Company.__table__)
people = cast(Table, Person.__table__)
final_leads = cast(Table, FinalLead.__table__)
work_history = cast(Table, PersonWorkHistory.__table__)

COMPANY_COLUMNS = (
    "name",
    "domain",
    "linkedin_url",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "city",
    "state",
    "country_code",
)
PERSON_COLUMNS = (
    "first_name",
    "last_name",
    "full_name",
    "title",
    "email",
    "phone",
    "linkedin_url",
    "city",
    "state",
    "country_code",
)
LEAD_COLUMNS = (
    "first_name",
    "last_name",
    "full_name",
    "title",
    "seniority",
    "department",
    "email",
    "email_valid",
    "phone",
    "person_linkedin_url",
    "city",
    "state",
    "country_code",
    "company_name",
    "company_domain",
    "company_linkedin_url",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "company_city",
    "company_state",
    "company_country_code",
    "keywords",
    "technologies",
    "apollo_contact_id",
    "apollo_account_id",
)
# Bounded columns: a longer value would fail the whole chunk on Postgres.
_LIMITS = {
    "seniority": 20,
    "department": 40,
    "apollo_contact_id": 100,
    "apollo_account_id": 100,
    "country_code": 2,
    "company_country_code": 2,
}
KEY_LIMIT = 300
HISTORY_DATE_LIMIT = 40


# --------------------------------------------------------------------------- shared helpers


def _engine(contexts: Sequence[StepContext]) -> Engine:
    engine = contexts[0].services.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError("the runner provides services['engine'] to chunk steps; it is missing")
    return engine


@dataclass(frozen=True)
class _Bulk:
    """A chunk's ``INSERT ... ON CONFLICT (keys) DO UPDATE`` in one statement, without
    SQLAlchemy's per-row parameter processing (the chunk steps' largest cost before).

    Postgres: the rows travel as one JSONB parameter unpacked by ``jsonb_array_elements``, with
    ``RETURNING`` (one round trip). SQLite: bound values in multi-row ``VALUES`` statements,
    then one ``SELECT`` of the ids (measured: unpacking a 30-column row from JSON costs SQLite
    3.40 more than binding it, and ``RETURNING`` more than the ``SELECT``).

    ``columns`` are (name, kind), kind ``int``, ``text``, ``bool`` or ``json``; ``returning``
    is read back for every row written; ``fill_only`` keeps stored values and only fills what
    is still empty.
    """

    table: str
    columns: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]
    update: tuple[str, ...]
    returning: tuple[str, ...]
    fill_only: bool = False


_PG_CAST = {"int": "({})::bigint", "text": "{}", "bool": "({})::boolean"}


def _conflict_sql(bulk: _Bulk) -> str:
    sets = ", ".join(
        f"{c} = COALESCE({bulk.table}.{c}, excluded.{c})"
        if bulk.fill_only
        else f"{c} = excluded.{c}"
        for c in bulk.update
    )
    return f"ON CONFLICT ({', '.join(bulk.keys)}) DO UPDATE SET {sets}"


def _column_list(bulk: _Bulk) -> str:
    return ", ".join([name for name, _ in bulk.columns] + ["created_at"])


@lru_cache(maxsize=8)
def _postgres_upsert_sql(bulk: _Bulk) -> str:
    """The upsert of a JSONB array of rows, with ``RETURNING``."""
    values = [
        f"r -> {i}" if kind == "json" else _PG_CAST[kind].format(f"r ->> {i}")
        for i, (_, kind) in enumerate(bulk.columns)
    ]
    # Rows go in list order: callers sort them, so concurrent chunks take their row locks
    # in the same order and queue instead of deadlocking.
    return (
        f"INSERT INTO {bulk.table} ({_column_list(bulk)}) SELECT {', '.join(values)}, :now "
        "FROM jsonb_array_elements(CAST(:rows AS JSONB)) WITH ORDINALITY AS e(r, n) "
        f"ORDER BY n {_conflict_sql(bulk)} RETURNING {', '.join(bulk.returning)}"
    )


@lru_cache(maxsize=32)
def _sqlite_upsert_sql(bulk: _Bulk, rows: int) -> str:
    """The upsert of ``rows`` rows as one multi-row ``VALUES`` statement."""
    row = f"({', '.join('?' * (len(bulk.columns) + 1))})"
    conflict = _conflict_sql(bulk)
    if bulk.fill_only:
        # Only rows that gain a value: SQLite rewrites a row even when no value changes, and
        # the colleagues of a company seen in an earlier chunk usually bring nothing new.
        gains = " OR ".join(
            f"({bulk.table}.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in bulk.update
        )
        conflict += f" WHERE {gains}"
    return (
        f"INSERT INTO {bulk.table} ({_column_list(bulk)}) VALUES {', '.join([row] * rows)} "
        f"{conflict}"
    )


@lru_cache(maxsize=8)
def _sqlite_read_back_sql(bulk: _Bulk) -> str:
    """The ``returning`` columns of the rows whose keys are in a JSON array of key arrays."""
    # json_each drives the join (CROSS JOIN keeps that order), each key one index search.
    match = " AND ".join(f"t.{key} = j.value ->> '$[{i}]'" for i, key in enumerate(bulk.keys))
    return (
        f"SELECT {_json_columns(bulk, 't.')} "
        f"FROM json_each(?) AS j CROSS JOIN {bulk.table} AS t ON {match}"
    )


@lru_cache(maxsize=8)
def _sqlite_inserted_sql(bulk: _Bulk) -> str:
    """The ``returning`` columns of the rows whose id is above a given one."""
    return f"SELECT {_json_columns(bulk, '')} FROM {bulk.table} WHERE id > ?"


def _json_columns(bulk: _Bulk, prefix: str) -> str:
    # One row of JSON arrays: the driver steps a result one row per call, releasing and
    # taking the GIL each time, and every row is an object more for the garbage collector.
    return ", ".join(f"json_group_array({prefix}{c})" for c in bulk.returning)


def _sqlite_rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of a ``_json_columns`` query, as tuples."""
    columns = map(jsoncodec.loads, conn.exec_driver_sql(sql, params).one())
    return list(zip(*columns, strict=True))


_CREATED_AT = companies.c.created_at.type


def _bulk_upsert(conn: Connection, bulk: _Bulk, rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """Write ``rows`` (lists in ``bulk.columns`` order); the ``returning`` columns of each.

    Both read-backs also see a row another transaction committed while this one waited on
    its key (Postgres re-checks the conflict after the wait and RETURNING reports the row).
    """
    if not rows:
        return []
    now = datetime.now(UTC)
    if is_postgres(conn):
        stmt = text(_postgres_upsert_sql(bulk)).bindparams(bindparam("now", type_=_CREATED_AT))
        result = conn.execute(stmt, {"rows": jsoncodec.dumps(rows), "now": now})
        return [tuple(row) for row in result]
    # the stored text SQLAlchemy would write (the type decorator and the dialect's format)
    created = _CREATED_AT.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    stamp = created(now) if created else now
    dumps = jsoncodec.dumps
    json_at = [i for i, (_, kind) in enumerate(bulk.columns) if kind == "json"]
    # As few statements as SQLite's limit on bound values allows, of equal size: measured,
    # half the time of executemany's statement per row for `people` (foreign keys and
    # indexes are checked per statement), a little less for the other tables.
    per_statement = sqlite_rows_per_statement(conn, len(bulk.columns) + 1)
    statements = -(-len(rows) // per_statement)
    size = -(-len(rows) // statements)
    before = conn.exec_driver_sql(f"SELECT max(id) FROM {bulk.table}").scalar() or 0
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        params: list[Any] = []
        for row in part:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = dumps(row[i])
            params += row
            params.append(stamp)
        conn.exec_driver_sql(_sqlite_upsert_sql(bulk, len(part)), tuple(params))
    # The writer lock keeps other writers out, so every id above the largest before is a row
    # this upsert inserted: when there are as many as rows, none was an update and they are
    # the answer (one range scan instead of a search per key).
    inserted = _sqlite_rows(conn, _sqlite_inserted_sql(bulk), (before,))
    if len(inserted) == len(rows):
        return inserted
    names = [name for name, _ in bulk.columns]
    key_at = [names.index(key) for key in bulk.keys]
    keys = dumps([[row[i] for i in key_at] for row in rows])
    return _sqlite_rows(conn, _sqlite_read_back_sql(bulk), (keys,))


_INT_COLUMNS = frozenset(
    {
        "batch_id",
        "item_id",
        "company_id",
        "position",
        "employees",
        "annual_revenue",
        "total_funding",
    }
)
_JSON_COLUMNS = frozenset({"keywords", "technologies", "enrichment"})


def _kinds(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            name,
            "int"
            if name in _INT_COLUMNS
            else "json"
            if name in _JSON_COLUMNS
            else "bool"
            if name == "email_valid"
            else "text",
        )
        for name in names
    )


_COMPANIES = _Bulk(
    "companies",
    _kinds("batch_id", "company_key", *COMPANY_COLUMNS),
    ("batch_id", "company_key"),
    COMPANY_COLUMNS,
    ("id", "batch_id", "company_key"),
    True,
)
_PEOPLE = _Bulk(
    "people",
    _kinds("batch_id", "item_id", *PERSON_COLUMNS, "company_id"),
    ("item_id",),
    (*PERSON_COLUMNS, "company_id"),
    ("item_id", "id"),
)
_FINAL_LEADS = _Bulk(
    "final_leads",
    _kinds("batch_id", "item_id", *LEAD_COLUMNS, "enrichment"),
    ("item_id",),
    (*LEAD_COLUMNS, "enrichment"),
    ("item_id", "id"),
)


def _company_name(ctx: StepContext) -> tuple[str | None, str | None]:
    """(display name, match key): the normalization step's result, else computed here."""
    done = ctx.results.get(NAME_STEP)
    if done and done.get("company_name"):
        return done.get("company_name"), done.get("match_key") or None
    return _company_name_of_row(ctx)


def _company_name_of_row(ctx: StepContext) -> tuple[str | None, str | None]:
    raw = ctx.fields.get("company_name") or ctx.identity.company_name
    if not raw:
        return None, None
    cleaned = normalize_company_name(raw, ctx.fields.get("company_name_for_emails"))
    return cleaned.name or None, cleaned.match_key or None


def _company_domain(ctx: StepContext) -> str | None:
    done = ctx.results.get(DOMAIN_STEP)
    if done and done.get("company_domain"):
        return str(done["company_domain"])
    return _company_domain_of_row(ctx)


def _company_domain_of_row(ctx: StepContext) -> str | None:
    # Not run yet, or skipped (no result is stored then): the same computation gives the answer.
    website = ctx.fields.get("website") or ctx.identity.company_domain
    email = ctx.fields.get("email") or ctx.identity.email or ""
    _, at, tail = email.rpartition("@")
    return _domain_of(website, tail if at else email, bool(at))


@lru_cache(maxsize=65536)
def _domain_of(website: str | None, mail_tail: str, has_at: bool) -> str | None:
    """``company_domain`` depends on the e-mail only through its domain: cached on that, so the
    colleagues of one company cost one computation (profiled: the split's top hot spot)."""
    return company_domain(website, f"x@{mail_tail}" if has_at else mail_tail or None).domain


@lru_cache(maxsize=65536)
def _amount(raw: str | None) -> int | None:
    return parse_int_amount(raw)


def company_key(domain: str | None, match_key: str | None) -> str | None:
    """``domain:<registrable domain>``, else ``name:<match key>``, else None."""
    if domain:
        return f"domain:{domain}"[:KEY_LIMIT]
    if match_key:
        return f"name:{match_key}"[:KEY_LIMIT]
    return None


# --------------------------------------------------------------------------- split


class _CompanyPart(NamedTuple):
    """What the split writes for a row's company: the same for every colleague, so the usual
    path builds it once per distinct set of raw cells (``_company_from_cells``) and shares
    it."""

    match_key: str | None
    domain: str | None
    domain_key: str | None
    name_key: str | None
    columns: tuple[Any, ...]
    """In ``COMPANY_COLUMNS`` order."""
    filled: int
    """Bit ``i`` set when ``columns[i]`` has a value (``_filled``), computed once per part."""


def _company_part(
    match_key: str | None, domain: str | None, columns: tuple[Any, ...]
) -> _CompanyPart:
    return _CompanyPart(
        match_key,
        domain,
        company_key(domain, None),
        company_key(None, match_key),
        columns,
        _filled(columns),
    )


def _filled(columns: Iterable[Any]) -> int:
    return sum(1 << i for i, value in enumerate(columns) if value is not None)


class _StoredCompanies:
    """The companies this process saw committed, per engine: (batch id, company key) -> (id,
    ``_filled`` mask of the columns known to hold a value).

    Stored companies only ever gain values (the split's upsert is fill-only and nothing else
    writes them, nor deletes them while their batch exists), so a company known here to which
    a chunk brings no value for an empty column needs no upsert: the id is known and the upsert
    would change nothing. Colleagues of a company usually sit in different chunks: on the
    100,000-row benchmark the split upserted 1,529 of the chunks' 76,900 company rows instead
    of all of them, and took 0.925 of the time. Entries are added only after the chunk's
    transaction commits; a failed split transaction forgets the engine's entries, so its retry
    trusts no remembered id (a company deleted by hand fails one chunk on the foreign key).
    """

    LIMIT = 200_000
    """Entries per engine before it starts over: a memory bound, about 55 MB with keys of 40
    characters (measured with tracemalloc)."""

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[
            Engine, dict[tuple[int, str], tuple[int, int]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, engine: Engine) -> dict[tuple[int, str], tuple[int, int]]:
        with self._lock:
            known = self._by_engine.get(engine)
            if known is None or len(known) > self.LIMIT:
                known = self._by_engine[engine] = {}
            return known

    def forget(self, engine: Engine) -> None:
        with self._lock:
            self._by_engine.pop(engine, None)


_STORED_COMPANIES = _StoredCompanies()


@lru_cache(maxsize=16384)
def _company_of_cells(
    name: str | None,
    match_key: str | None,
    domain: str | None,
    linkedin_url: str | None,
    industry: str | None,
    employees: str | None,
    annual_revenue: str | None,
    total_funding: str | None,
    city: str | None,
    state: str | None,
    country: str | None,
) -> _CompanyPart:
    """The company of a row without core results, from its cleaned name and domain and its
    raw cells (the expensive normalizations stay with ``normalize_all_core_values``)."""
    columns = (
        name,
        domain,
        normalize_linkedin_company_url(linkedin_url),
        industry,
        _amount(employees),
        _amount(annual_revenue),
        _amount(total_funding),
        clean_cell(city),
        clean_cell(state),
        country_code(clean_cell(country)),
    )
    return _company_part(match_key, domain, columns)


@lru_cache(maxsize=16384)
def _company_from_cells(
    raw_name: str | None,
    short_name: str | None,
    website: str | None,
    mail_tail: str,
    has_at: bool,
    linkedin_url: str | None,
    industry: str | None,
    identity_industry: str | None,
    employees: str | None,
    annual_revenue: str | None,
    total_funding: str | None,
    city: str | None,
    state: str | None,
    country: str | None,
) -> _CompanyPart:
    """The company of a row no normalization step has seen (the split runs first), from its
    raw cells alone: what ``_company_name``, ``_company_domain`` and ``_company_of_cells``
    give, found with one cache lookup per row."""
    name = match_key = None
    if raw_name:
        cleaned = normalize_company_name(raw_name, short_name)
        name, match_key = cleaned.name or None, cleaned.match_key or None
    return _company_of_cells(
        name,
        match_key,
        _domain_of(website, mail_tail, has_at),
        linkedin_url,
        clean_cell(industry) or identity_industry,
        employees,
        annual_revenue,
        total_funding,
        city,
        state,
        country,
    )


_COMPANY_CELLS = (
    "company_name",
    "company_name_for_emails",
    "website",
    "company_linkedin_url",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "company_city",
    "company_state",
    "company_country",
)
_PERSON_CELLS = (
    "email",
    "first_name",
    "last_name",
    "person_name",
    "title",
    "linkedin_url",
    "city",
    "state",
    "country",
    *PHONE_FIELDS,
)
_SPLIT_CELLS = _COMPANY_CELLS + _PERSON_CELLS
"""The cells the split reads, picked in one call (``StepContext.values``)."""
_PERSON_AT = len(_COMPANY_CELLS)

_CORE_PERSON_KEYS = tuple(
    "person_linkedin_url" if column == "linkedin_url" else column for column in PERSON_COLUMNS
)


def _split_row(ctx: StepContext) -> tuple[_CompanyPart, list[Any]]:
    """The company of one item and its ``people`` row (``[batch_id, item_id,
    *PERSON_COLUMNS, company_id]``, the company id still None).

    Uses the normalization steps' results when they ran; otherwise the cheap, cached
    normalizers (the expensive phone parsing is left to ``normalize_all_core_values``; the
    consolidation step refreshes the person with its values). The usual case, a split that
    runs before any normalization, finds the company with one cache lookup on its cells.
    """
    results = ctx.results
    core = results.get(CORE_STEP)
    if core is not None:
        name, match_key = _company_name(ctx)
        domain = _company_domain(ctx)
        company = _company_part(
            match_key,
            domain,
            (
                name,
                domain,
                core.get("company_linkedin_url"),
                clean_cell(ctx.fields.get("industry")) or ctx.identity.industry,
                core.get("employees"),
                core.get("annual_revenue"),
                core.get("total_funding"),
                core.get("company_city"),
                core.get("company_state"),
                core.get("company_country_code"),
            ),
        )
        return company, [ctx.batch_id, ctx.item_id, *map(core.get, _CORE_PERSON_KEYS), None]
    cells = ctx.values(_SPLIT_CELLS)
    person = _person_row(ctx, cells[_PERSON_AT:])
    (
        raw_name,
        short_name,
        website,
        linkedin_url,
        industry,
        employees,
        annual_revenue,
        total_funding,
        city,
        state,
        country,
    ) = cells[:_PERSON_AT]
    if NAME_STEP not in results and DOMAIN_STEP not in results:
        identity = ctx.identity
        email = cells[_PERSON_AT] or identity.email or ""
        _, at, mail_tail = email.rpartition("@")
        company = _company_from_cells(
            raw_name or identity.company_name,
            short_name,
            website or identity.company_domain,
            mail_tail if at else email,
            bool(at),
            linkedin_url,
            industry,
            identity.industry,
            employees,
            annual_revenue,
            total_funding,
            city,
            state,
            country,
        )
        return company, person
    name, match_key = _company_name(ctx)
    company = _company_of_cells(
        name,
        match_key,
        _company_domain(ctx),
        linkedin_url,
        clean_cell(industry) or ctx.identity.industry,
        employees,
        annual_revenue,
        total_funding,
        city,
        state,
        country,
    )
    return company, person


def _person_row(ctx: StepContext, cells: list[str | None]) -> list[Any]:
    """The ``people`` row of an item without core results, from its ``_PERSON_CELLS``,
    company id still None.

    Cheap cleaning only: ``consolidate_final_leads`` rewrites the person with the values of
    ``normalize_all_core_values`` (name parsing and URL canonicalisation cost more than the
    whole split step may spend per row)."""
    email, first, last, full_name, title, linkedin_url, city, state, country, *phones = cells
    first, last = clean_cell(first), clean_cell(last)
    valid = normalize_email(email or ctx.identity.email)
    city, state, country = person_place(city, state, country)
    return [
        ctx.batch_id,
        ctx.item_id,
        first,
        last,
        clean_cell(full_name)
        or ctx.identity.person_name
        or (f"{first} {last}" if first and last else first or last),
        clean_cell(title) or ctx.identity.title,
        valid.email if valid.valid else None,
        next(filter(None, map(clean_cell, phones)), None),
        clean_cell(linkedin_url) or ctx.identity.linkedin_url,
        city,
        state,
        country,
        None,
    ]


@chunk_handler(SPLIT)
def split_raw_apollo_scrape_data_into_two_tables(
    contexts: Sequence[StepContext],
) -> list[Outcome | Exception]:
    """Upsert the chunk's companies (one per key per batch) and people (one per item)."""
    if not contexts:
        return []
    values = [_split_row(ctx) for ctx in contexts]
    # A row without a usable domain joins the company of the same name that has one.
    by_name: dict[tuple[int, str], str] = {}
    for ctx, (company, _) in zip(contexts, values, strict=True):
        if company.domain and company.match_key:
            by_name.setdefault((ctx.batch_id, company.match_key), f"domain:{company.domain}")
    keys: list[str | None] = [
        company.domain_key
        or by_name.get((ctx.batch_id, company.match_key or ""))
        or company.name_key
        for ctx, (company, _) in zip(contexts, values, strict=True)
    ]
    engine = _engine(contexts)
    known = _STORED_COMPANIES.of(engine)
    try:
        with engine.begin() as conn:
            _join_named_domains(conn, contexts, values, keys)
            company_ids, written = _upsert_companies(conn, contexts, values, keys, known)
            people_rows = []
            for ctx, key, (_, person) in zip(contexts, keys, values, strict=True):
                person[-1] = company_ids[(ctx.batch_id, key)] if key else None
                people_rows.append(person)
            person_ids: dict[int, int] = dict(_bulk_upsert(conn, _PEOPLE, people_rows))
    except BaseException:
        _STORED_COMPANIES.forget(engine)
        raise
    known.update(written)
    return [
        {"company_id": person[-1], "person_id": person_ids[ctx.item_id], "company_key": key}
        for ctx, key, (_, person) in zip(contexts, keys, values, strict=True)
    ]


def _upsert_companies(
    conn: Connection,
    contexts: Sequence[StepContext],
    values: Sequence[tuple[_CompanyPart, list[Any]]],
    keys: list[str | None],
    known: Mapping[tuple[int, str], tuple[int, int]],
) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], tuple[int, int]]]:
    """The id of each company of the chunk, upserting those ``known`` does not make a no-op;
    and the entries to remember once the transaction commits."""
    # the first row of a company wins; later rows fill what it lacks
    company_rows: dict[tuple[int, str], tuple[list[Any], _CompanyPart]] = {}
    merged: set[tuple[int, str]] = set()
    for ctx, key, (company, _) in zip(contexts, keys, values, strict=True):
        if key is None:
            continue
        have = company_rows.get((ctx.batch_id, key))
        if have is None:
            company_rows[(ctx.batch_id, key)] = ([ctx.batch_id, key, *company.columns], company)
        elif have[1] is not company:  # not the same cached company
            merged.add((ctx.batch_id, key))
            row = have[0]
            for index, value in enumerate(company.columns, 2):
                if row[index] is None and value is not None:
                    row[index] = value
    company_ids: dict[tuple[int, str], int] = {}
    filled: dict[tuple[int, str], int] = {}
    to_write = []
    for batch_key, (row, company) in company_rows.items():
        mask = _filled(row[2:]) if batch_key in merged else company.filled
        stored = known.get(batch_key)
        if stored is not None and stored[1] | mask == stored[1]:
            company_ids[batch_key] = stored[0]
            continue
        filled[batch_key] = mask | (stored[1] if stored else 0)
        to_write.append(row)
    to_write.sort(key=itemgetter(0, 1))  # the order concurrent chunks lock rows in (Postgres)
    written = {}
    for cid, batch_id, ckey in _bulk_upsert(conn, _COMPANIES, to_write):
        company_ids[(batch_id, ckey)] = cid
        written[(batch_id, ckey)] = (cid, filled[(batch_id, ckey)])
    return company_ids, written


def _join_named_domains(
    conn: Connection,
    contexts: Sequence[StepContext],
    values: Sequence[tuple[_CompanyPart, list[Any]]],
    keys: list[str | None],
) -> None:
    """Rows still keyed by name join a company of the batch that has a domain and the same
    match key, written by an earlier chunk (in place, on ``keys``)."""
    wanted: dict[int, dict[str, str]] = {}  # batch -> display name -> match key
    for ctx, key, (company, _) in zip(contexts, keys, values, strict=True):
        name = company.columns[0]
        if key is not None and key.startswith("name:") and company.match_key and name:
            wanted.setdefault(ctx.batch_id, {})[name] = company.match_key
    found: dict[tuple[int, str], str] = {}
    for batch_id, names in wanted.items():
        for ckey, cname in conn.execute(
            select(companies.c.company_key, companies.c.name)
            .where(
                companies.c.batch_id == batch_id,
                companies.c.company_key.like("domain:%"),
                companies.c.name.in_(list(names)),
            )
            .order_by(companies.c.id)
        ):
            match_key = normalize_company_name(cname).match_key
            found.setdefault((batch_id, match_key), ckey)
    if not found:
        return
    for index, (ctx, (company, _)) in enumerate(zip(contexts, values, strict=True)):
        key = keys[index]
        if key is not None and key.startswith("name:") and company.match_key:
            keys[index] = found.get((ctx.batch_id, company.match_key), key)


# --------------------------------------------------------------------------- consolidation

POSITION_KEYS = (
    "positions",
    "work_history",
    "experience",
    "experiences",
    "employment_history",
    "employment",
    "jobs",
)
_COMPANY_ALIASES = (
    "company",
    "company_name",
    "organization",
    "organization_name",
    "org",
    "employer",
    "companyName",
)
_TITLE_ALIASES = ("title", "job_title", "position", "role", "jobTitle")
_START_ALIASES = ("start", "start_date", "started_at", "starts_at", "from", "startDate", "since")
_END_ALIASES = ("end", "end_date", "ended_at", "ends_at", "to", "until", "endDate")


def _first(entry: Mapping[str, Any], aliases: Iterable[str]) -> Any:
    for alias in aliases:
        value = entry.get(alias)
        if value not in (None, ""):
            return value
    return None


def _as_text(value: Any) -> str | None:
    """A position's company or title as text (a nested ``{"name": ...}`` gives its name)."""
    if isinstance(value, Mapping):
        value = _first(value, ("name", "title", "value"))
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _as_date(value: Any) -> str | None:
    """ISO-ish date text; ``{"year": 2020, "month": 3}`` gives ``2020-03``."""
    if isinstance(value, Mapping):
        year = value.get("year")
        if not year:
            return None
        stamp = str(year)
        for part in (value.get("month"), value.get("day")):
            if not str(part or "").isdigit():
                break
            stamp += f"-{int(str(part)):02d}"
        return stamp[:HISTORY_DATE_LIMIT]
    text = _as_text(value)
    return text[:HISTORY_DATE_LIMIT] if text else None


def positions_of(result: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Every position dict found under a position key of ``result`` (also one level down, for
    results shaped like ``{"person": {"positions": [...]}}``)."""
    if not isinstance(result, Mapping) or depth > 1:
        return
    for key in POSITION_KEYS:
        value = result.get(key)
        if isinstance(value, list):
            yield from (p for p in value if isinstance(p, Mapping))
    for value in result.values():
        if isinstance(value, Mapping):
            yield from positions_of(value, depth + 1)


def work_history_rows(ctx: StepContext, enrichment: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step, result in enrichment.items():
        for index, entry in enumerate(positions_of(result)):
            company = _as_text(_first(entry, _COMPANY_ALIASES))
            title = _as_text(_first(entry, _TITLE_ALIASES))
            start = _as_date(_first(entry, _START_ALIASES))
            end = _as_date(_first(entry, _END_ALIASES))
            if company is None and title is None:
                continue  # nothing that says what the position was
            rows.append(
                {
                    "batch_id": ctx.batch_id,
                    "item_id": ctx.item_id,
                    "source_step": step,
                    "position": index,
                    "company": company,
                    "title": title,
                    "start_date": start,
                    "end_date": end,
                }
            )
    return rows


def lead_values(ctx: StepContext) -> dict[str, Any]:
    """The ``final_leads`` columns of one item (without ids and ``enrichment``)."""
    return dict(zip(LEAD_COLUMNS, _lead_row(ctx), strict=True))


_LEAD_AT = {column: index for index, column in enumerate(LEAD_COLUMNS)}
_BOUNDED_AT = tuple((_LEAD_AT[column], limit) for column, limit in _LIMITS.items())
_COMPANY_NAME_AT = _LEAD_AT["company_name"]
_COMPANY_DOMAIN_AT = _LEAD_AT["company_domain"]
_INDUSTRY_AT = _LEAD_AT["industry"]
_KEYWORDS_AT = _LEAD_AT["keywords"]
_TECHNOLOGIES_AT = _LEAD_AT["technologies"]
_CONTACT_ID_AT = _LEAD_AT["apollo_contact_id"]
_ACCOUNT_ID_AT = _LEAD_AT["apollo_account_id"]


def _lead_row(ctx: StepContext) -> list[Any]:
    """``lead_values`` as a list in ``LEAD_COLUMNS`` order (no dict per row to build)."""
    core: Mapping[str, Any] | None = ctx.results.get(CORE_STEP)
    if core is None:
        core = normalize_core_values(ctx.fields)
    # Every column by its name in the core values (one C-level pass), then the ones that come
    # from elsewhere are set.
    row: list[Any] = list(map(core.get, LEAD_COLUMNS))
    fields = ctx.fields
    row[_COMPANY_NAME_AT] = _company_name(ctx)[0]
    row[_COMPANY_DOMAIN_AT] = _company_domain(ctx)
    row[_INDUSTRY_AT] = clean_cell(fields.get("industry")) or ctx.identity.industry
    row[_KEYWORDS_AT] = list(row[_KEYWORDS_AT] or [])
    row[_TECHNOLOGIES_AT] = list(row[_TECHNOLOGIES_AT] or [])
    row[_CONTACT_ID_AT] = clean_cell(fields.get("apollo_contact_id"))
    row[_ACCOUNT_ID_AT] = clean_cell(fields.get("apollo_account_id"))
    for index, limit in _BOUNDED_AT:
        value = row[index]
        if isinstance(value, str) and len(value) > limit:
            row[index] = value[:limit]
    return row


_person_of_lead = itemgetter(
    *(
        _LEAD_AT["person_linkedin_url" if column == "linkedin_url" else column]
        for column in PERSON_COLUMNS
    )
)
"""The ``PERSON_COLUMNS`` of a ``_lead_row``."""


def enrichment_of(ctx: StepContext) -> JSON:
    """Every result of the item that is not one of the built-in cleaning steps."""
    return {step: result for step, result in ctx.results.items() if step not in BUILTIN_STEPS}


@chunk_handler(CONSOLIDATE)
def consolidate_final_leads(contexts: Sequence[StepContext]) -> list[Outcome | Exception]:
    """Upsert one ``final_leads`` row per item and replace its work history.

    On SQLite, the items whose only results are the built-in cleaning steps' are written by
    set-based SQL from the stored results (``_consolidate_in_sql``); the others, and every
    item on Postgres, through ``_lead_row`` in Python.
    """
    if not contexts:
        return []
    engine = _engine(contexts)
    on_postgres = is_postgres(engine)
    kinds: dict[int, tuple[bool, bool, bool]] = {}
    if not on_postgres:
        with reading(engine) as conn:
            kinds = _result_kinds(conn, [ctx.item_id for ctx in contexts])
    # Items with an enrichment result are computed here, outside the write transaction; the
    # rest go to SQL, with the company name or domain computed from the row where that step
    # left no result.
    in_python: list[StepContext] = []
    in_sql: dict[int, StepContext] = {}
    sql_rows: list[list[Any]] = []
    for ctx in contexts:
        has_name, has_domain, enriched = kinds.get(ctx.item_id, _NO_RESULTS)
        if enriched or on_postgres:
            in_python.append(ctx)
            continue
        in_sql[ctx.item_id] = ctx
        sql_rows.append([ctx.item_id, *_company_of_row(ctx, has_name, has_domain)])
    leads = _LeadRows()
    for ctx in in_python:
        leads.add(ctx)
    item_ids = [c.item_id for c in contexts]
    with engine.begin() as conn:
        lead_ids: dict[int, int] = _consolidate_in_sql(conn, sql_rows) if sql_rows else {}
        # What SQL left out needs Python (no core result, or one of the cases of
        # ``_SQL_WRITABLE``), computed in this transaction.
        for item_id, ctx in in_sql.items():
            if item_id not in lead_ids:
                leads.add(ctx)
        lead_ids.update(_bulk_upsert(conn, _FINAL_LEADS, leads.rows))
        conn.execute(delete(work_history).where(id_in(conn, work_history.c.item_id, item_ids)))
        if leads.history:
            conn.execute(insert(work_history), leads.history)
        _people_refresh(conn, leads.people)
    counts: dict[int, int] = {}
    for row in leads.history:
        counts[row["item_id"]] = counts.get(row["item_id"], 0) + 1
    return [
        {
            "final_lead_id": lead_ids[ctx.item_id],
            "enrichment_steps": leads.steps.get(ctx.item_id, []),
            "work_history": counts.get(ctx.item_id, 0),
        }
        for ctx in contexts
    ]


class _LeadRows:
    """What the Python path writes for its items: ``final_leads`` rows, work history and the
    people rows' new values."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.history: list[dict[str, Any]] = []
        self.people: list[tuple[Any, ...]] = []
        self.steps: dict[int, list[str]] = {}

    def add(self, ctx: StepContext) -> None:
        values = _lead_row(ctx)
        enrichment = enrichment_of(ctx)
        self.steps[ctx.item_id] = sorted(enrichment)
        self.rows.append([ctx.batch_id, ctx.item_id, *values, enrichment])
        if enrichment:
            self.history.extend(work_history_rows(ctx, enrichment))
        self.people.append((ctx.item_id, *_person_of_lead(values)))


# --------------------------------------------------------------------------- consolidation in SQL
# What ``_lead_row`` computes for an item whose results are those of the cleaning steps (and
# the split) and nothing else: every column is a value of the core step's result, the name and
# domain results, or, when one of those two is missing, a value computed from the row and
# passed in. SQLite copies them from the stored payloads itself (docs/architecture.md,
# departure 19). The INSERT writes only the items whose results allow it
# (``_SQL_WRITABLE``); ``consolidate_final_leads`` sends the others to the Python path: a
# core result from before ``normalize_core_values`` returned ``industry`` and the Apollo ids,
# a name or domain result without a value, or an enrichment result stored since
# ``_result_kinds`` looked.
_BUILTIN_LIST = ", ".join(f"'{step}'" for step in sorted(BUILTIN_STEPS))
# Index-only (the unique index on item and step covers both columns): which results an item
# has, not what they hold; ``_CONSOLIDATE_SQLITE`` checks the payloads it reads anyway.
_RESULT_KINDS_SQLITE = f"""
SELECT json_group_array(json_array(item_id, has_name, has_domain, enriched)) FROM (
SELECT item_id, max(step_name = '{NAME_STEP}') AS has_name,
    max(step_name = '{DOMAIN_STEP}') AS has_domain,
    max(step_name NOT IN ({_BUILTIN_LIST})) AS enriched
FROM enrichment_results WHERE item_id IN (SELECT value FROM json_each(?1)) GROUP BY item_id)
"""
_NO_RESULTS = (False, False, False)


def _result_kinds(conn: Connection, item_ids: list[int]) -> dict[int, tuple[bool, bool, bool]]:
    """item id -> (has a company name result, has a company domain result, has a result of a
    step that is not a built-in one); items without any result are left out."""
    found = conn.exec_driver_sql(_RESULT_KINDS_SQLITE, (jsoncodec.dumps(item_ids),)).scalar_one()
    return {
        item: (bool(name), bool(domain), bool(enriched))
        for item, name, domain, enriched in jsoncodec.loads(found)
    }


def _company_of_row(
    ctx: StepContext, has_name: bool, has_domain: bool
) -> tuple[str | None, str | None]:
    """The company name and domain of an item's row where it has no such result."""
    name = None if has_name else _company_name_of_row(ctx)[0]
    return name, None if has_domain else _company_domain_of_row(ctx)


def _lead_expression(column: str) -> str:
    """The SQL of one ``final_leads`` column, as ``_lead_row`` computes it."""
    if column == "company_name":
        value = "coalesce(nullif(name.payload ->> '$.company_name', ''), j.value ->> 1)"
    elif column == "company_domain":
        value = "coalesce(nullif(dom.payload ->> '$.company_domain', ''), j.value ->> 2)"
    elif column == "industry":
        value = "coalesce(core.payload ->> '$.industry', i.industry)"
    elif column in ("keywords", "technologies"):
        value = (
            f"CASE json_type(core.payload, '$.{column}') WHEN 'array' "
            f"THEN core.payload -> '$.{column}' ELSE '[]' END"
        )
    else:
        value = f"core.payload ->> '$.{column}'"
    limit = _LIMITS.get(column)
    if limit is not None:
        value = (
            f"CASE WHEN typeof({value}) = 'text' THEN substr({value}, 1, {limit}) ELSE {value} END"
        )
    return value


_SQL_FROM = f"""
FROM json_each(?1) AS j
CROSS JOIN batch_items AS i ON i.id = j.value ->> 0
JOIN enrichment_results AS core ON core.item_id = i.id AND core.step_name = '{CORE_STEP}'
LEFT JOIN enrichment_results AS name ON name.item_id = i.id AND name.step_name = '{NAME_STEP}'
LEFT JOIN enrichment_results AS dom ON dom.item_id = i.id AND dom.step_name = '{DOMAIN_STEP}'
"""
# json_type reads the parse the column expressions reuse; measured cheaper than instr's scan.
_SQL_WRITABLE = f"""
WHERE json_type(core.payload, '$.apollo_account_id') IS NOT NULL
  AND (name.payload IS NULL OR coalesce(name.payload ->> '$.company_name', '') <> '')
  AND (dom.payload IS NULL OR coalesce(dom.payload ->> '$.company_domain', '') <> '')
  AND NOT EXISTS (SELECT 1 FROM enrichment_results AS r WHERE r.item_id = i.id
    AND r.step_name NOT IN ({_BUILTIN_LIST}))
"""
_SQL_WRITABLE_ITEMS = f"SELECT json_group_array(i.id) {_SQL_FROM} {_SQL_WRITABLE}"
_CONSOLIDATE_SQLITE = f"""
INSERT INTO final_leads (batch_id, item_id, {", ".join(LEAD_COLUMNS)}, enrichment, created_at)
SELECT i.batch_id, i.id, {", ".join(map(_lead_expression, LEAD_COLUMNS))}, '{{}}', ?2
{_SQL_FROM} {_SQL_WRITABLE}
ON CONFLICT (item_id) DO UPDATE SET
{", ".join(f"{c} = excluded.{c}" for c in (*LEAD_COLUMNS, "enrichment"))}
"""
_PEOPLE_FROM_LEADS_SQLITE = f"""
UPDATE people SET {
    ", ".join(
        f"{c} = f.{'person_linkedin_url' if c == 'linkedin_url' else c}" for c in PERSON_COLUMNS
    )
}
FROM final_leads AS f
WHERE f.item_id = people.item_id AND people.item_id IN (SELECT value FROM json_each(?1))
"""
_LEAD_IDS_SQLITE = (
    "SELECT json_group_array(item_id), json_group_array(id) FROM final_leads "
    "WHERE item_id IN (SELECT value FROM json_each(?1))"
)


def _consolidate_in_sql(conn: Connection, items: list[list[Any]]) -> dict[int, int]:
    """Write the ``final_leads`` rows of items without enrichment results (``[item_id,
    company name, company domain]`` each, the last two None where the item has that result)
    and refresh their ``people`` rows, in SQL; item id -> final lead id of those written."""
    created = _CREATED_AT.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    now = datetime.now(UTC)
    rows = jsoncodec.dumps(items)
    written = conn.exec_driver_sql(_CONSOLIDATE_SQLITE, (rows, created(now) if created else now))
    # Usually every item was written. Otherwise the same conditions, read in this transaction,
    # tell which (measured: RETURNING cost the INSERT a tenth more).
    if written.rowcount == len(items):
        ids = jsoncodec.dumps([item[0] for item in items])
    else:
        ids = conn.exec_driver_sql(_SQL_WRITABLE_ITEMS, (rows,)).scalar_one()
    conn.exec_driver_sql(_PEOPLE_FROM_LEADS_SQLITE, (ids,))
    found_items, leads = conn.exec_driver_sql(_LEAD_IDS_SQLITE, (ids,)).one()
    return dict(zip(jsoncodec.loads(found_items), jsoncodec.loads(leads), strict=True))


_PEOPLE_REFRESH_POSTGRES = text(
    f"UPDATE people SET {', '.join(f'{c} = r ->> {i}' for i, c in enumerate(PERSON_COLUMNS, 1))} "
    "FROM jsonb_array_elements(CAST(:rows AS JSONB)) AS r "
    "WHERE people.item_id = (r ->> 0)::bigint"
)
# Numbered parameters: each ``[item_id, *PERSON_COLUMNS]`` row binds as it is.
_PEOPLE_REFRESH_SQLITE = (
    f"UPDATE people SET {', '.join(f'{c} = ?{i}' for i, c in enumerate(PERSON_COLUMNS, 2))} "
    "WHERE item_id = ?1"
)


def _people_refresh(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Give the items' ``people`` rows (written by the split step, when it ran) the normalized
    person values (``[item_id, *PERSON_COLUMNS]`` each); items without one are left alone.

    Postgres: one statement for the chunk. SQLite: one prepared statement per row, bound
    (measured: a third of the time of unpacking the rows from one JSON parameter)."""
    if not rows:
        return
    if is_postgres(conn):
        conn.execute(_PEOPLE_REFRESH_POSTGRES, {"rows": jsoncodec.dumps(rows)})
    else:
        conn.exec_driver_sql(_PEOPLE_REFRESH_SQLITE, rows)
