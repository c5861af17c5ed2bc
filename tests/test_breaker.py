"""The circuit breaker's rules on a stepped clock (no database: it counts outcomes), and its
options refused where they are set."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from enrichflow.breaker import StepBreaker, breaker_for
from enrichflow.catalog.validation import BreakerOptions, breaker_options
from enrichflow.cli import app
from enrichflow.db.states import Claim, StepOutcome
from enrichflow.errors import ConfigError
from enrichflow.states import Status

CLAIM = Claim(1, 1, 1, 0, "clay", 1)
GONE = "POST https://api.clay.com/… answered HTTP 404: table 812 not found"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failed(error: str = GONE) -> StepOutcome:
    return StepOutcome(CLAIM, Status.FAILED, error=error)


def retried(error: str = "POST https://api.clay.com/… answered HTTP 500") -> StepOutcome:
    return StepOutcome(CLAIM, Status.PENDING, error=error)


SENT = StepOutcome(CLAIM, Status.IN_PROGRESS, deadline_ms=1)


def breaker(failures: int = 20, window: float = 60.0) -> tuple[StepBreaker, Clock]:
    clock = Clock()
    return StepBreaker(BreakerOptions(failures, window), clock), clock


def test_twenty_same_failures_in_a_row_trip_it_once() -> None:
    b, _ = breaker()
    # ids and numbers in the error text do not make another kind of failure
    trips = [b.record(failed(GONE.replace("812", str(n)))) for n in range(45)]
    assert [i for i, t in enumerate(trips) if t is not None] == [19, 39]
    trip = trips[19]
    assert trip is not None and trip.failures == 20 and "HTTP 404" in trip.error_class
    assert trip.reason.startswith("20 sends in a row failed the same way, the last with: POST")


def test_a_success_or_another_error_starts_the_count_again() -> None:
    b, _ = breaker()
    for _ in range(19):
        assert b.record(failed()) is None
    assert b.record(SENT) is None
    for _ in range(19):
        assert b.record(failed()) is None
    assert b.record(failed("POST https://api.clay.com/… answered HTTP 401")) is None
    assert b.record(failed()) is None


def test_rate_limits_and_followers_count_for_nothing() -> None:
    b, _ = breaker(failures=3)
    paced = StepOutcome(CLAIM, Status.PENDING, error="HTTP 429", retry_after_ms=1000)
    follower = StepOutcome(CLAIM, Status.IN_PROGRESS, waiting_on=7)
    assert [b.record(o) for o in (failed(), paced, follower, failed())] == [None] * 4
    assert b.record(failed()) is not None


def test_every_send_failing_for_the_window_trips_it() -> None:
    b, clock = breaker(failures=0, window=60)
    assert b.record(retried()) is None
    clock.now = 59.0
    assert b.record(retried()) is None
    clock.now = 61.0
    trip = b.record(failed())
    assert trip is not None and trip.failures == 3
    assert trip.reason.startswith("every send for 61 s failed (3 in a row)")
    # two failures a window apart are not enough
    clock.now = 200.0
    assert b.record(retried()) is None
    clock.now = 300.0
    assert b.record(retried()) is None


def test_runners_of_one_step_share_a_breaker() -> None:
    options = BreakerOptions(20, 60.0)
    one = breaker_for(1, 99, 2, options)
    assert breaker_for(1, 99, 2, options) is one
    assert breaker_for(1, 99, 3, options) is not one
    assert breaker_for(1, 99, 2, BreakerOptions(5, 60.0)) is not one


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"breaker_failures": -1}, "breaker_failures"),
        ({"breaker_failures": 2.5}, "breaker_failures"),
        ({"breaker_failures": True}, "breaker_failures"),
        ({"breaker_window_seconds": "1m"}, "breaker_window_seconds"),
        ({"breaker_window_seconds": float("inf")}, "breaker_window_seconds"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        breaker_options(config)
    assert breaker_options({}) == BreakerOptions(20, 60.0)
    assert breaker_options({"breaker_failures": 0, "breaker_window_seconds": 0}) == (0, 0.0)


def test_workflow_set_refuses_a_bad_threshold(db_url: str) -> None:
    slug = "enrich_company_via_waterfall_in_clay"
    result = CliRunner().invoke(
        app, ["workflow", "set", slug, "breaker_failures=-3", "--database-url", db_url]
    )
    assert result.exit_code == 2 and "breaker_failures" in result.output
    accepted = CliRunner().invoke(
        app, ["workflow", "set", slug, "breaker_failures=50", "--database-url", db_url]
    )
    assert accepted.exit_code == 0, accepted.output
