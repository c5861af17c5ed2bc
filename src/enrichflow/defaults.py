"""Constants the CLI needs when it starts (option defaults, messages), kept apart from their
heavy home modules (:mod:`enrichflow.seed` imports the ORM models, :mod:`enrichflow.steps.webhook`
httpx and the step registry) so that importing the CLI does not import those. The home modules
re-export them."""

APOLLO = "apollo_scrape"
"""The built-in workstream: Apollo.io exports."""

DEFAULT_MAX_SUBMISSIONS = 50_000
"""Rows a Clay webhook source accepts in its lifetime."""
