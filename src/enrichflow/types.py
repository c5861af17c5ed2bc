"""Types shared by every layer: the database reads produce them and the handlers consume them,
so they live below both."""

from __future__ import annotations

from typing import Any, NamedTuple

JSON = dict[str, Any]


class ItemIdentity(NamedTuple):
    """The identity columns of a batch item, as ingested (a tuple, because the runner builds one
    per item and a frozen dataclass is much slower to build)."""

    company_name: str | None = None
    company_domain: str | None = None
    linkedin_url: str | None = None
    industry: str | None = None
    person_name: str | None = None
    email: str | None = None
    title: str | None = None
