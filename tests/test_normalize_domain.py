from __future__ import annotations

from pathlib import Path

import enrichflow.normalize.domain as domain_mod
from enrichflow.normalize import (
    DomainResult,
    company_domain,
    is_free_mail_domain,
    is_non_company_site,
    registrable_domain,
)


def test_registrable_domain_strips_everything_but_the_domain() -> None:
    assert registrable_domain("http://www.globex.co.uk:8080/x?y=1") == "globex.co.uk"
    assert registrable_domain("shop.adventure-works.com.cn") == "adventure-works.com.cn"
    assert registrable_domain("WWW.ACME.COM.") == "acme.com"
    assert registrable_domain("xn--mnchen-3ya.de") == "münchen.de"
    assert registrable_domain("https://www.münchen.de") == "münchen.de"
    assert registrable_domain("192.168.0.1") is None
    assert registrable_domain("localhost") is None
    assert registrable_domain("co.uk") is None
    assert registrable_domain("") is None


def test_extractor_never_downloads() -> None:
    assert domain_mod._EXTRACTOR.suffix_list_urls == ()


def test_non_company_sites() -> None:
    for site in ("linkedin.com", "https://x.com/acme", "bit.ly", "t.co", "linktr.ee/acme"):
        assert is_non_company_site(site), site
    assert not is_non_company_site("acme.com")


def test_free_mail_list_is_a_data_file_with_enough_entries() -> None:
    path = Path(domain_mod.__file__).with_name("free_mail_domains.txt")
    entries = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert len(entries) >= 100
    for free in ("gmail.com", "yahoo.co.uk", "hotmail.fr", "gmx.de", "proton.me", "qq.com"):
        assert is_free_mail_domain(free), free
    assert not is_free_mail_domain("acme.com")


def test_company_domain_prefers_website_then_email() -> None:
    assert company_domain("https://www.acme.com", "j@other.com") == DomainResult(
        "acme.com", "website", None
    )
    assert company_domain("https://linkedin.com/company/acme", "j@acme.com") == DomainResult(
        "acme.com", "email", None
    )
    none = company_domain(None, "j@gmail.com")
    assert none.domain is None and none.source is None
    assert none.reason is not None
    assert "website missing" in none.reason and "free-mail" in none.reason
    social = company_domain("facebook.com/acme", None)
    assert social.reason is not None
    assert "not the company's own site" in social.reason and "email missing" in social.reason
