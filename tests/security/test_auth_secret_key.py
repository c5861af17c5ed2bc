"""No known signing key: none in the code, a random one kept in the database when the
environment sets none (the same for every process on that database), a short one refused with
exit 2, and ``doctor`` telling where the key comes from."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from enrichflow.config import Settings
from enrichflow.db.engine import make_engine
from enrichflow.db.models import InstanceSecret
from enrichflow.doctor import run_checks
from enrichflow.secret_key import (
    MIN_KEY_BYTES,
    WeakSecretKey,
    resolve_secret_key,
)
from enrichflow.webhooks.signing import callback_token
from security.conftest import OLD_DEFAULT_KEY, STRONG_KEY, Browser, make_settings

RESOLVE = (
    "import sys; from enrichflow.config import Settings; from enrichflow.db.engine import "
    "make_engine; from enrichflow.secret_key import resolve_secret_key; "
    "print(resolve_secret_key(make_engine(sys.argv[1]), Settings(_env_file=None)).value)"
)


ENRICHFLOW = str(Path(sys.executable).with_name("enrichflow"))


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHFLOW_")}
    env.update(extra)
    return env


def test_the_code_holds_no_key() -> None:
    assert Settings(_env_file=None).secret_key is None  # type: ignore[call-arg]


def test_unset_key_is_generated_once_and_shared(db_url: str, engine: Engine) -> None:
    first = resolve_secret_key(engine, make_settings())
    assert first.source == "database"
    assert len(first.value.encode()) >= MIN_KEY_BYTES
    other = make_engine(db_url)
    try:
        assert resolve_secret_key(other, make_settings()).value == first.value
    finally:
        other.dispose()
    with engine.connect() as conn:
        assert conn.execute(select(InstanceSecret.value)).scalars().all() == [first.value]


def test_processes_starting_at_once_agree(db_url: str, engine: Engine) -> None:
    """Four processes resolve the key of a database that has none, all at the same time."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RESOLVE, db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for _ in range(4)
    ]
    keys = set()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        keys.add(out.strip())
    assert len(keys) == 1
    assert resolve_secret_key(engine, make_settings()).value in keys


def test_environment_key_wins(engine: Engine) -> None:
    resolved = resolve_secret_key(engine, make_settings(secret_key=STRONG_KEY))
    assert (resolved.value, resolved.source) == (STRONG_KEY, "environment")
    assert "security-suite" not in repr(resolved)


@pytest.mark.parametrize("weak", ["", "short", OLD_DEFAULT_KEY, "é" * 15])
def test_short_key_is_refused(engine: Engine, weak: str) -> None:
    with pytest.raises(WeakSecretKey, match=r"secrets\.token_urlsafe\(32\)"):
        resolve_secret_key(engine, make_settings(secret_key=weak))


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["conductor", "--until-idle"]])
def test_commands_refuse_a_short_key_with_exit_2(db_url: str, command: list[str]) -> None:
    env = child_env(ENRICHFLOW_DATABASE_URL=db_url, ENRICHFLOW_SECRET_KEY=OLD_DEFAULT_KEY)
    done = subprocess.run(
        [ENRICHFLOW, *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "at least 32" in done.stderr and "token_urlsafe(32)" in done.stderr


def test_doctor_reports_the_source_and_fails_a_weak_key(engine: Engine) -> None:
    def secret_check(settings: Settings) -> tuple[bool, str]:
        (check,) = [c for c in run_checks(engine, settings) if c.name == "secret key"]
        return check.ok, check.detail

    ok, detail = secret_check(make_settings())
    assert ok and "generates" in detail
    resolve_secret_key(engine, make_settings())
    ok, detail = secret_check(make_settings())
    assert ok and "from the database" in detail
    ok, detail = secret_check(make_settings(secret_key=STRONG_KEY))
    assert ok and "from the environment" in detail
    ok, detail = secret_check(make_settings(secret_key=OLD_DEFAULT_KEY))
    assert not ok and "31 bytes" in detail


def test_callback_signed_with_the_old_default_key_is_refused(
    serve_app: Callable[..., Browser],
) -> None:
    """Before: a token signed with the key in the source landed as a COMPLETED result. After:
    the key is random, and the forged token is refused before the body is read."""
    browser = serve_app()
    for state_id in range(1, 21):
        token = callback_token(state_id, 1, OLD_DEFAULT_KEY)
        answer = browser.post(f"/callbacks/{token}", json={"company": "attacker data"})
        assert answer.status_code == 401, (state_id, answer.text)
    genuine = callback_token(1, 1, browser.app.state.secret_key)
    assert browser.post(f"/callbacks/{genuine}", json={}).status_code != 401
