"""The built-in SYNC chunk step ``split_raw_apollo_scrape_data_into_two_tables``: one
``companies`` row per company of a batch (keyed on the registrable domain, else the normalized
name) and one ``people`` row per item, linked to its company.

It writes a whole chunk with a few set-based statements in one transaction. Every write is an
``INSERT ... ON CONFLICT`` on a unique key, so a re-run, a retry or a second chunk naming the
same company never duplicates a row; company keys are written in sorted order so two chunks
inserting the same companies at once on Postgres wait on each other instead of deadlocking,
and the ids are read back after the upsert (which sees a row another transaction committed
while we waited on it). The split sends only the companies a chunk adds or fills: those this
process already committed unchanged keep their remembered id (``_StoredCompanies``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Engine, select
from sqlalchemy.schema import Table

from enrichflow.columns import (
    COMPANY_COLUMNS,
    CORE_STEP,
    DOMAIN_STEP,
    NAME_STEP,
    PERSON_CELL_COLUMNS,
    SPLIT,
)
from enrichflow.db.models import Company, Person
from enrichflow.db.upsert import BulkUpsert, bulk_upsert, column_kinds
from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.company import normalize_company_name
from enrichflow.normalize.contact import normalize_email
from enrichflow.normalize.core import (
    COMPANY_EXTRA_FIELDS,
    PHONE_FIELDS,
    company_extras,
    person_place,
)
from enrichflow.normalize.geo import country_code, state_code
from enrichflow.normalize.linkedin import normalize_linkedin_company_url
from enrichflow.normalize.numbers import parse_int_amount
from enrichflow.normalize.phone import parse_phone
from enrichflow.steps.base import Outcome, StepContext, chunk_engine
from enrichflow.steps.company_values import company_domain_of, company_name_of, domain_of
from enrichflow.steps.registry import chunk_handler

companies = cast(Table, Company.__table__)
people = cast(Table, Person.__table__)

KEY_LIMIT = 300

_COMPANIES = BulkUpsert(
    "companies",
    column_kinds(companies, ("batch_id", "company_key", *COMPANY_COLUMNS)),
    ("batch_id", "company_key"),
    COMPANY_COLUMNS,
    ("id", "batch_id", "company_key"),
    True,
)
_PEOPLE = BulkUpsert(
    "people",
    column_kinds(people, ("batch_id", "item_id", *PERSON_CELL_COLUMNS, "company_id")),
    ("item_id",),
    (*PERSON_CELL_COLUMNS, "company_id"),
    ("item_id", "id"),
)


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
    would change nothing. Colleagues of a company usually sit in different chunks, so this spares
    the upsert of most of a chunk's company rows. Entries are added only after the chunk's
    transaction commits; a failed split transaction forgets the engine's entries, so its retry
    trusts no remembered id (a company deleted by hand fails one chunk on the foreign key).
    """

    LIMIT = 200_000
    """Entries per engine before it starts over, so that the cache's memory stays bounded."""

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
    *more: str | None,
) -> _CompanyPart:
    """The company of a row without core results, from its cleaned name and domain and its
    raw cells, ``more`` being its phone cell and those of ``COMPANY_EXTRA_FIELDS`` (the
    person-level normalizations stay with ``normalize_all_core_values``)."""
    cleaned_state = clean_cell(state)
    code = country_code(clean_cell(country))
    phone, *extra_cells = more
    extras = company_extras(*extra_cells)
    columns = (
        name,
        domain,
        normalize_linkedin_company_url(linkedin_url),
        industry,
        _amount(employees),
        _amount(annual_revenue),
        _amount(total_funding),
        clean_cell(city),
        cleaned_state,
        code,
        state_code(cleaned_state, code),
        parse_phone(phone, code).e164,
        extras.address,
        list(extras.sic_codes) or None,
        list(extras.naics_codes) or None,
        extras.facebook_url,
        extras.twitter_url,
        extras.latest_funding,
        extras.latest_funding_amount,
        extras.last_raised_at,
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
    *more: str | None,
) -> _CompanyPart:
    """The company of a row no normalization step has seen (the split runs first), from its
    raw cells alone: what ``company_name_of``, ``company_domain_of`` and ``_company_of_cells``
    give, found with one cache lookup per row."""
    name = match_key = None
    if raw_name:
        cleaned = normalize_company_name(raw_name, short_name)
        name, match_key = cleaned.name or None, cleaned.match_key or None
    return _company_of_cells(
        name,
        match_key,
        domain_of(website, mail_tail, has_at),
        linkedin_url,
        clean_cell(industry) or identity_industry,
        employees,
        annual_revenue,
        total_funding,
        city,
        state,
        country,
        *more,
    )


# The company cells the split reads after the country: ``Company Phone`` (the account's own
# number, the same for every colleague) else ``Corporate Phone``, passed on as one cell so
# that a file whose corporate lines differ by person still finds its companies cached.
_MORE_COMPANY_CELLS = ("company_phone", "phone_corporate", *COMPANY_EXTRA_FIELDS)
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
    *_MORE_COMPANY_CELLS,
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
    "person_linkedin_url" if column == "linkedin_url" else column for column in PERSON_CELL_COLUMNS
)
_CORE_LISTS = frozenset({"sic_codes", "naics_codes"})


def _split_row(ctx: StepContext) -> tuple[_CompanyPart, list[Any]]:
    """The company of one item and its ``people`` row (``[batch_id, item_id,
    *PERSON_CELL_COLUMNS, company_id]``, the company id still None).

    Uses the normalization steps' results when they ran; otherwise the cheap, cached
    normalizers (the expensive phone parsing is left to ``normalize_all_core_values``; the
    consolidation step refreshes the person with its values). The usual case, a split that
    runs before any normalization, finds the company with one cache lookup on its cells.
    """
    results = ctx.results
    core = results.get(CORE_STEP)
    if core is not None:
        name, match_key = company_name_of(ctx)
        domain = company_domain_of(ctx)
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
                core.get("company_state_code"),
                core.get("company_phone") or core.get("corporate_phone"),
                # an empty list is None, so a colleague's codes can still fill the company
                *(
                    core.get(key) or None if key in _CORE_LISTS else core.get(key)
                    for key in COMPANY_EXTRA_FIELDS
                ),
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
        company_phone,
        corporate_phone,
        *extra_cells,
    ) = cells[:_PERSON_AT]
    phone = company_phone or corporate_phone
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
            phone,
            *extra_cells,
        )
        return company, person
    name, match_key = company_name_of(ctx)
    company = _company_of_cells(
        name,
        match_key,
        company_domain_of(ctx),
        linkedin_url,
        clean_cell(industry) or ctx.identity.industry,
        employees,
        annual_revenue,
        total_funding,
        city,
        state,
        country,
        phone,
        *extra_cells,
    )
    return company, person


def _person_row(ctx: StepContext, cells: list[str | None]) -> list[Any]:
    """The ``people`` row of an item without core results, from its ``_PERSON_CELLS``,
    company id still None.

    Cheap cleaning only: ``consolidate_final_leads`` rewrites the person with the values of
    ``normalize_all_core_values`` (name parsing, URL canonicalisation and phone parsing cost
    more than the whole split step may spend per row), and fills the ``people`` columns the
    split does not write (e-mail status, the phones by kind, state code, ...)."""
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
    engine = chunk_engine(contexts)
    known = _STORED_COMPANIES.of(engine)
    try:
        with engine.begin() as conn:
            _join_named_domains(conn, contexts, values, keys)
            company_ids, written = _upsert_companies(conn, contexts, values, keys, known)
            people_rows = []
            for ctx, key, (_, person) in zip(contexts, keys, values, strict=True):
                person[-1] = company_ids[(ctx.batch_id, key)] if key else None
                people_rows.append(person)
            person_ids: dict[int, int] = dict(bulk_upsert(conn, _PEOPLE, people_rows))
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
    for cid, batch_id, ckey in bulk_upsert(conn, _COMPANIES, to_write):
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
