"""Signed callback tokens and redaction."""

from __future__ import annotations

import string

import pytest

from enrichflow.errors import EnrichflowError
from enrichflow.webhooks.redact import REDACTED, excerpt, redact_text, redact_url
from enrichflow.webhooks.signing import (
    InvalidCallbackToken,
    callback_token,
    callback_url,
    verify_callback_token,
)

SECRET = "s3cret-key-for-tests"


def test_round_trip() -> None:
    token = callback_token(12345, 3, SECRET)
    assert token.startswith("12345.3.")
    assert verify_callback_token(token, SECRET) == (12345, 3)


def test_token_is_url_safe() -> None:
    token = callback_token(9, 0, SECRET)
    allowed = set(string.ascii_letters + string.digits + "-_.")
    assert set(token) <= allowed
    assert "=" not in token


def test_every_single_character_change_is_rejected() -> None:
    token = callback_token(77, 2, SECRET)
    alphabet = string.ascii_letters + string.digits + "-_."
    for i, original in enumerate(token):
        for replacement in alphabet:
            if replacement == original:
                continue
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(InvalidCallbackToken):
                verify_callback_token(tampered, SECRET)


@pytest.mark.parametrize(
    "tampered",
    [
        "",
        "77.2",
        "77.2.",
        "077.2.{sig}",
        "+77.2.{sig}",
        " 77.2.{sig}",
        "77.2.{sig}=",
        "77.2.{sig}.x",
        "77.3.{sig}",
        "78.2.{sig}",
        "77.2.{sig}A",
        "٧٧.2.{sig}",
    ],
)
def test_malformed_or_forged_tokens(tampered: str) -> None:
    sig = callback_token(77, 2, SECRET).split(".")[2]
    with pytest.raises(InvalidCallbackToken):
        verify_callback_token(tampered.format(sig=sig), SECRET)


def test_wrong_secret_rejected() -> None:
    token = callback_token(5, 1, SECRET)
    with pytest.raises(InvalidCallbackToken) as info:
        verify_callback_token(token, "another-secret")
    assert isinstance(info.value, EnrichflowError)
    assert str(info.value) == "The callback token is malformed or its signature does not match."


def test_empty_secret_refused() -> None:
    with pytest.raises(ValueError):
        callback_token(1, 1, "")


def test_callback_url() -> None:
    token = callback_token(1, 2, SECRET)
    assert callback_url("https://flow.example.com/", token) == (
        f"https://flow.example.com/callbacks/{token}"
    )
    assert callback_url("http://127.0.0.1:8000", "t") == "http://127.0.0.1:8000/callbacks/t"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.clay.com/v3/sources/webhook/pull-in-data-from-a-webhook-abc?x=1",
            "https://api.clay.com/…",
        ),
        ("https://user:pw@hooks.example.com:8443/p", "https://hooks.example.com:8443/…"),
        ("http://127.0.0.1:9/a", "http://127.0.0.1:9/…"),
        ("not a url", "…"),
        ("", "…"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_hides_secrets_and_urls() -> None:
    url = "https://api.clay.com/v3/sources/webhook/secret-path-123"
    text = (
        f"failed posting to {url} with token tok-XYZ-987 and key tok-XYZ-987; "
        "see https://docs.example.com/help?q=1 for help"
    )
    out = redact_text(text, [url, "tok-XYZ-987", None, ""])
    assert "secret-path-123" not in out
    assert "tok-XYZ-987" not in out
    assert "https://api.clay.com/…" in out
    assert "https://docs.example.com/…" in out
    assert out.count(REDACTED) == 2


def test_redact_text_secret_inside_url_query() -> None:
    out = redact_text("GET http://h.example/x?api_key=abcd1234 failed", ["abcd1234"])
    assert out == "GET http://h.example/… failed"


def test_excerpt() -> None:
    assert excerpt("a\n  b\tc") == "a b c"
    long = "x" * 500
    cut = excerpt(long, 50)
    assert len(cut) == 50
    assert cut.endswith("…")
