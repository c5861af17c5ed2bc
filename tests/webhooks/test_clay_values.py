"""What a Clay workflow is sent and de-duplicated on: normalized values before raw cells, and
the options that govern de-duplication and reuse."""

from __future__ import annotations

from typing import Any

import pytest
from webhook_servers import make_context

from enrichflow.catalog.validation import webhook_options, workflow_options_check
from enrichflow.errors import ConfigError
from enrichflow.seed import REGISTRY
from enrichflow.steps.base import ItemIdentity
from enrichflow.steps.clay_values import company_key, payload_values
from enrichflow.steps.webhook import build_payload, dedupe_value

RAW = ItemIdentity(
    company_name="ACME Holdings, Inc.",
    company_domain="https://www.linkedin.com/company/acme",
    linkedin_url="linkedin.com/in/ada-l/",
    person_name="ada LOVELACE",
    email=" Ada@Acme.io ",
    title="ceo",
)
NORMALIZED: dict[str, Any] = {
    "normalize_company_name": {"company_name": "ACME Holdings", "match_key": "acme"},
    "normalize_company_domain": {"company_domain": "acme.io", "source": "email"},
    "normalize_all_core_values": {
        "full_name": "Ada Lovelace",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@acme.io",
        "title": "CEO",
        "industry": None,
        "person_linkedin_url": "https://www.linkedin.com/in/ada-l",
        "company_linkedin_url": "https://www.linkedin.com/company/acme",
    },
}


def test_payload_carries_normalized_values_and_the_raw_row() -> None:
    ctx = make_context(
        identity=RAW, results=NORMALIZED, original_data={"Website": RAW.company_domain}
    )
    payload = build_payload(ctx, "https://cb.example/callbacks/t")
    assert {k: payload[k] for k in payload_values(ctx)} == {
        "company_name": "ACME Holdings",
        "company_domain": "acme.io",
        "company_linkedin_url": "https://www.linkedin.com/company/acme",
        "linkedin_url": "https://www.linkedin.com/in/ada-l",
        "industry": None,
        "person_name": "Ada Lovelace",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@acme.io",
        "title": "CEO",
    }
    assert payload["original_data"] == {"Website": "https://www.linkedin.com/company/acme"}
    assert payload["results"]["normalize_company_domain"]["company_domain"] == "acme.io"


def test_payload_falls_back_to_the_raw_cells_without_normalization() -> None:
    values = payload_values(make_context(identity=RAW, results={}))
    assert values["company_domain"] == RAW.company_domain
    assert values["email"] == RAW.email and values["person_name"] == RAW.person_name
    assert values["company_linkedin_url"] is None


def test_company_key_prefers_domain_then_linkedin_then_name() -> None:
    assert company_key(make_context(identity=RAW, results=NORMALIZED)) == "domain:acme.io"
    core = {"company_linkedin_url": "https://www.linkedin.com/company/acme"}
    no_domain = make_context(
        identity=ItemIdentity(company_name="Acme, Inc."),
        results={"normalize_all_core_values": core},
        fields={},
    )
    assert company_key(no_domain) == "linkedin:https://www.linkedin.com/company/acme"
    by_name = make_context(identity=ItemIdentity(company_name="Acme, Inc."), results={}, fields={})
    assert company_key(by_name) == "name:acme"
    assert company_key(make_context(identity=ItemIdentity(), results={}, fields={})) is None


def test_dedupe_by_an_identity_field_uses_its_normalized_value() -> None:
    ctx = make_context(identity=RAW, results=NORMALIZED)
    assert dedupe_value(ctx, "company_domain") == "acme.io"
    assert dedupe_value(ctx, "company") == "domain:acme.io"


@pytest.mark.parametrize(
    ("config", "dedupe_by", "reuse_days", "across"),
    [
        ({}, None, 0.0, False),
        ({"dedupe_by": "company"}, "company", 30.0, False),
        (
            {"dedupe_by": "company", "reuse_days": 7, "reuse_across_clients": True},
            "company",
            7.0,
            True,
        ),
        ({"dedupe_by": "company", "reuse_days": 0}, "company", 0.0, False),
        ({"dedupe_by": "off"}, None, 0.0, False),
        ({"dedupe_by": "None"}, None, 0.0, False),
    ],
)
def test_dedupe_and_reuse_options(
    config: dict[str, Any], dedupe_by: str | None, reuse_days: float, across: bool
) -> None:
    options = webhook_options(config)
    assert (options.dedupe_by, options.reuse_days, options.reuse_across_clients) == (
        dedupe_by,
        reuse_days,
        across,
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dedupe_by": "company", "reuse_days": -1}, "'reuse_days' must be a number of days"),
        ({"dedupe_by": "company", "reuse_days": "30"}, "'reuse_days' must be a number of days"),
        ({"reuse_days": 30}, "'reuse_days' needs a de-duplication key"),
        ({"dedupe_by": "off", "reuse_days": 30}, "'reuse_days' needs a de-duplication key"),
        ({"reuse_across_clients": "yes"}, "'reuse_across_clients' must be true or false"),
    ],
)
def test_bad_reuse_options_are_refused_where_set(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        workflow_options_check("webhook", config, "enrich", "apollo_scrape")


def test_the_company_workflow_is_seeded_de_duplicated_and_the_person_one_not() -> None:
    company = REGISTRY["enrich_company_via_waterfall_in_clay"][3]
    person = REGISTRY["enrich_person_via_waterfall_in_clay"][3]
    assert webhook_options(company).dedupe_by == "company"
    assert webhook_options(company).reuse_days == 30
    assert webhook_options(person).dedupe_by is None
    assert webhook_options(person).reuse_days == 0
