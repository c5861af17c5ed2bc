"""Whether an upload fits a pipeline: the identity columns recognised in it, the fields each
step reads, and the operator's own mapping of a column the aliases did not recognise.

A launch refuses an upload with no identity column (every item would be anonymous and every
step would skip it); the upload page shows the same facts before the launch is tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from enrichflow.errors import ConfigError
from enrichflow.ingest.aliases import CANONICAL_FIELDS

__all__ = [
    "FIELD_LABELS",
    "IDENTIFYING_FIELDS",
    "StepNeed",
    "column_map_with",
    "identity_check",
    "identity_columns",
    "step_needs",
]

IDENTIFYING_FIELDS: tuple[str, ...] = (
    "email",
    "linkedin_url",
    "person_name",
    "first_name",
    "last_name",
    "company_name",
    "website",
    "company_linkedin_url",
)
"""Fields that tell one row's person or company from another's; a file needs one of them."""

FIELD_LABELS: Mapping[str, str] = {
    "email": "e-mail",
    "linkedin_url": "LinkedIn URL",
    "person_name": "full name",
    "first_name": "first name",
    "last_name": "last name",
    "company_name": "company name",
    "website": "website or domain",
    "company_linkedin_url": "company LinkedIn URL",
}

HANDLER_READS: Mapping[str, tuple[str, ...]] = {
    "split_raw_apollo_scrape_data_into_two_tables": ("company_name", "website", "email"),
    "normalize_company_name": ("company_name",),
    "normalize_company_domain": ("website", "email"),
    "normalize_all_core_values": ("email", "person_name", "first_name", "last_name", "phone"),
}
"""Built-in handlers and the fields they read, any one of which is enough for a row; a handler
not listed here reads no particular field (or says so in its options, as ``webhook`` does)."""

DEDUPE_FIELDS: Mapping[str, str] = {"company_domain": "website"}
"""``dedupe_by`` identity names and the input field they come from."""


def identity_columns(column_map: Mapping[str, str]) -> dict[str, str]:
    """The identifying fields found in the file, each with the column it is read from."""
    return {f: column_map[f] for f in IDENTIFYING_FIELDS if f in column_map}


def identity_check(column_map: Mapping[str, str], headers: Sequence[str]) -> None:
    """:class:`ConfigError` when no column of the file identifies a person or a company."""
    if identity_columns(column_map):
        return
    shown = ", ".join(headers[:12]) + (", …" if len(headers) > 12 else "")
    wanted = ", ".join(FIELD_LABELS[f] for f in IDENTIFYING_FIELDS)
    raise ConfigError(
        f"the file has no identity column: none of its columns ({shown}) was recognised as "
        f"{wanted}; map one of them to a field before launching"
    )


def column_map_with(
    column_map: Mapping[str, str], headers: Sequence[str], chosen: Mapping[str, str]
) -> dict[str, str]:
    """``column_map`` (field -> column) with the operator's ``chosen`` mapping (column ->
    field) applied; :class:`ConfigError` naming the column for an unknown column or field, or
    for a field given two columns."""
    merged = dict(column_map)
    taken: dict[str, str] = {}
    for header, field in chosen.items():
        if header not in headers:
            raise ConfigError(f"the file has no column {header!r}")
        if field not in CANONICAL_FIELDS:
            raise ConfigError(f"column {header!r}: {field!r} is not a field enrichflow knows")
        if field in taken:
            raise ConfigError(
                f"columns {taken[field]!r} and {header!r} are both mapped to {field!r}; "
                "a field is read from one column"
            )
        taken[field] = header
        merged[field] = header
    return merged


@dataclass(frozen=True, slots=True)
class StepNeed:
    """What one step of a pipeline reads from the file, and where it found it."""

    step: str
    reads: tuple[str, ...]
    """Fields any one of which the step can work from (empty: it reads none in particular)."""
    found: dict[str, str]
    """Those of ``reads`` the file has, with their columns."""
    missing_columns: tuple[str, ...] = ()
    """Columns the step's options name that the file lacks (a Clay step's ``fields``)."""

    @property
    def satisfied(self) -> bool:
        return (not self.reads or bool(self.found)) and not self.missing_columns


def _webhook_reads(config: Mapping[str, Any]) -> tuple[str, ...]:
    name = config.get("dedupe_by")
    if not isinstance(name, str) or "." in name:
        return ()
    field = DEDUPE_FIELDS.get(name.strip(), name.strip())
    return (field,) if field in CANONICAL_FIELDS else ()


def step_needs(
    steps: Iterable[tuple[str, str, Mapping[str, Any]]],
    column_map: Mapping[str, str],
    headers: Sequence[str],
) -> list[StepNeed]:
    """For each ``(slug, handler, options)`` of a pipeline: the fields it reads and which of
    them the file has. A Clay step's ``fields`` names columns or earlier steps; the names that
    are neither are reported as missing columns."""
    listed = list(steps)
    slugs = [slug for slug, _, _ in listed]
    needs: list[StepNeed] = []
    for slug, handler, config in listed:
        reads = _webhook_reads(config) if handler == "webhook" else HANDLER_READS.get(handler, ())
        missing: tuple[str, ...] = ()
        selected = config.get("fields") if handler == "webhook" else None
        if isinstance(selected, list):
            missing = tuple(
                str(f) for f in selected if f not in headers and f not in slugs and f != slug
            )
        found = {f: column_map[f] for f in reads if f in column_map}
        needs.append(StepNeed(slug, reads, found, missing))
    return needs
