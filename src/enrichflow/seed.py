"""What ``enrichflow init`` puts in a fresh database: the workstream and the built-in registry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select

from enrichflow.db.migrate import upgrade
from enrichflow.db.models import EnrichmentRegistry, Workstream
from enrichflow.defaults import APOLLO as APOLLO
from enrichflow.states import StepType

WORKSTREAMS = {
    APOLLO: ("Apollo scrape", "People exported from Apollo.io, enriched and consolidated.")
}

# slug -> (name, type, handler, config, description)
REGISTRY: dict[str, tuple[str, StepType, str, dict[str, Any], str]] = {
    "noop": ("No-op", StepType.SYNC, "noop", {}, "Succeeds at once; for wiring checks."),
    "split_raw_apollo_scrape_data_into_two_tables": (
        "Split raw Apollo data into companies and people",
        StepType.SYNC,
        "split_raw_apollo_scrape_data_into_two_tables",
        {},
        "One company per registrable domain (else normalized name) per batch, one person per "
        "row linked to it; re-running never duplicates a row.",
    ),
    "normalize_company_name": (
        "Normalize company name",
        StepType.SYNC,
        "normalize_company_name",
        {},
        "Strips legal forms and symbols, fixes casing, and adds a match key for de-duplication.",
    ),
    "normalize_company_domain": (
        "Normalize company domain",
        StepType.SYNC,
        "normalize_company_domain",
        {},
        "Registrable domain from the website, else from a work e-mail (never free mail).",
    ),
    "normalize_all_core_values": (
        "Normalize all core values",
        StepType.SYNC,
        "normalize_all_core_values",
        {},
        "Person names, e-mail, phones (E.164), LinkedIn URLs, countries, amounts, seniority.",
    ),
    "consolidate_final_leads": (
        "Consolidate final leads",
        StepType.SYNC,
        "consolidate_final_leads",
        {},
        "One final_leads row per item from the normalized values and every enrichment result; "
        "work history from results that carry positions.",
    ),
    "enrich_company_via_waterfall_in_clay": (
        "Enrich company via waterfall in Clay",
        StepType.ASYNC,
        "webhook",
        {
            "concurrency": 10,
            "batch_size": 25,
            "rate_per_second": 10,
            "burst": 20,
            "dedupe_by": "company",
        },
        "Sends each company once (de-duplicated by its normalized domain, LinkedIn page or name, "
        "and reused from the client's results of the last 30 days) to the client's Clay table; "
        "completes on Clay's callback.",
    ),
    "enrich_person_via_waterfall_in_clay": (
        "Enrich person via waterfall in Clay",
        StepType.ASYNC,
        "webhook",
        {"concurrency": 10, "batch_size": 25, "rate_per_second": 10, "burst": 20},
        "Sends the person to the client's Clay table; completes on Clay's callback.",
    ),
}

BUILTIN_PIPELINES: dict[str, dict[str, list[str]]] = {
    APOLLO: {
        "apollo_default": [
            "split_raw_apollo_scrape_data_into_two_tables",
            "normalize_company_name",
            "normalize_company_domain",
            "normalize_all_core_values",
            "consolidate_final_leads",
        ]
    }
}
"""workstream -> pipeline name -> steps; usable by every client without saving them."""

DEFAULT_PIPELINE = "apollo_default"


def init_database(engine: Engine) -> None:
    """Migrate to head and insert the built-in workstream and registry rows that are missing."""
    upgrade(engine)
    with engine.begin() as conn:
        have = set(conn.execute(select(Workstream.slug)).scalars())
        for slug, (name, description) in WORKSTREAMS.items():
            if slug not in have:
                conn.execute(
                    insert(Workstream).values(slug=slug, name=name, description=description)
                )
        existing = set(
            conn.execute(
                select(EnrichmentRegistry.slug).where(EnrichmentRegistry.workstream_slug == APOLLO)
            ).scalars()
        )
        rows = [
            {
                "slug": slug,
                "workstream_slug": APOLLO,
                "name": name,
                "type": kind.value,
                "handler": handler_name,
                "config": config,
                "description": description,
            }
            for slug, (name, kind, handler_name, config, description) in REGISTRY.items()
            if slug not in existing
        ]
        if rows:
            conn.execute(insert(EnrichmentRegistry), rows)
