from __future__ import annotations

from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichflow.normalize import EmailResult, contact, normalize_email


def test_email_is_trimmed_lowercased_and_validated() -> None:
    assert normalize_email("  Jane.Doe@Acme.COM ") == EmailResult("jane.doe@acme.com", True)
    assert normalize_email("Jane Doe <jane@acme.com>") == EmailResult("jane@acme.com", True)
    assert normalize_email("jane@acme") == EmailResult("jane@acme", False)
    assert normalize_email(None) == EmailResult(None, False)
    assert normalize_email("n/a") == EmailResult(None, False)


# The fast ASCII path must agree with email_validator wherever it answers.
_EMAILISH = st.text(alphabet="abcXYZ019._%+-'@!#", min_size=3, max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    local=st.from_regex(r"[a-z0-9._+%'-]{1,20}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,8}){1,3}", fullmatch=True),
)
def test_fast_email_path_agrees_with_email_validator(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    if contact._fast_valid(text):
        info = validate_email(text, check_deliverability=False)
        assert info.normalized.lower() == text


@settings(max_examples=200, deadline=None)
@given(text=_EMAILISH)
def test_normalize_email_never_raises(text: str) -> None:
    result = normalize_email(text)
    assert result.email is None or result.email == result.email.lower()
