"""The ``title_length`` step on contexts built by hand, and its registration through the
installed entry point (what every enrichflow process does before it runs a step)."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import pytest
from enrichflow_title_length import MAX_TITLE, title_length

from enrichflow import PermanentStepError, Skip, StepContext
from enrichflow.steps.registry import get_handler


def context(**fields: str) -> StepContext:
    return StepContext(
        state_id=1,
        batch_id=1,
        item_id=1,
        step="title_length",
        workstream="apollo_scrape",
        client="example",
        attempt=1,
        row_number=7,
        identity=None,
        original_data={},
        results={},
        workflow_config={},
        client_config={},
        logger=logging.getLogger("title_length"),
        fields=fields,
    )


def test_the_length_of_the_title() -> None:
    assert title_length(context(title="VP of Sales")) == {"length": 11}


def test_a_row_without_a_title_is_skipped() -> None:
    assert title_length(context(email="a@example.com")) == Skip("no title")


def test_a_title_too_long_to_be_one_fails_naming_the_row() -> None:
    with pytest.raises(PermanentStepError, match="title of row 7 is 501 characters long"):
        title_length(context(title="x" * (MAX_TITLE + 1)))


def test_enrichflow_finds_the_step_through_the_entry_point() -> None:
    declared = [(p.name, p.value) for p in entry_points(group="enrichflow.steps")]
    assert ("title_length", "enrichflow_title_length") in declared
    assert get_handler("title_length") is title_length
