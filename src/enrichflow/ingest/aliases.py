"""Header aliases: map the column names of Apollo.io (and similar) exports to canonical fields.

Apollo renames columns between export versions (``Company`` -> ``Company Name``,
``First Phone`` -> ``Work Direct Phone`` / ``Mobile Phone`` / ``Corporate Phone``) and other
tools use their own names (``LinkedIn Link``, ``Company Website Full``).  A header is matched
after normalisation: lowercased, everything but letters and digits removed, and a trailing
duplicate marker `` (2)`` (added by the reader to repeated header names) ignored.

Every alias belongs to exactly one canonical name; headers with a different meaning (e.g.
``Secondary Email``, ``Primary Email Source``) are deliberately left unmapped. Unmapped
columns are still stored with the row and exported with ``--all-columns``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ALIASES",
    "CANONICAL_FIELDS",
    "IDENTITY_FIELDS",
    "HeaderMap",
    "map_headers",
    "normalize_header",
]

#: The canonical field names, in a stable order.
CANONICAL_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "person_name",
    "title",
    "seniority",
    "departments",
    "email",
    "email_status",
    "email_catch_all_status",
    "phone_work_direct",
    "phone_mobile",
    "phone_other",
    "phone_home",
    "phone_corporate",
    "phone",
    "company_phone",
    "do_not_call",
    "sub_departments",
    "linkedin_url",
    "company_linkedin_url",
    "city",
    "state",
    "country",
    "company_name",
    "company_name_for_emails",
    "website",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "company_city",
    "company_state",
    "company_country",
    "company_address",
    "keywords",
    "technologies",
    "sic_codes",
    "naics_codes",
    "facebook_url",
    "twitter_url",
    "latest_funding",
    "latest_funding_amount",
    "last_raised_at",
    "apollo_contact_id",
    "apollo_account_id",
)

_RAW_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("First Name", "FirstName", "First", "Given Name", "Person First Name",
                   "Contact First Name"),
    "last_name": ("Last Name", "LastName", "Last", "Surname", "Family Name", "Person Last Name",
                  "Contact Last Name"),
    "person_name": ("Name", "Full Name", "Person Name", "Contact Name", "Contact Full Name",
                    "Person Full Name", "Lead Name"),
    "title": ("Title", "Job Title", "Person Title", "Contact Title", "Position", "Job Position"),
    "seniority": ("Seniority", "Seniority Level", "Person Seniority"),
    "departments": ("Departments", "Department", "Person Departments"),
    "email": ("Email", "E-mail", "Email Address", "E-mail Address", "Work Email",
              "Work Email Address", "Business Email", "Person Email", "Contact Email",
              "Primary Email"),
    "email_status": ("Email Status", "Email Verification Status", "Email Verification",
                     "Primary Email Status"),
    "email_catch_all_status": ("Primary Email Catch-all Status", "Email Catch-all Status",
                               "Catch-all Status", "Catch All Status"),
    "phone_work_direct": ("Work Direct Phone", "Direct Phone", "Direct Dial", "Work Phone",
                          "Direct Phone Number"),
    "phone_mobile": ("Mobile Phone", "Mobile", "Mobile Number", "Mobile Phone Number",
                     "Cell Phone", "Cell"),
    "phone_other": ("Other Phone", "Other Phone Number"),
    "phone_home": ("Home Phone", "Home Phone Number"),
    "phone_corporate": ("Corporate Phone", "Corporate Phone Number"),
    "phone": ("First Phone", "Phone", "Phone Number", "Primary Phone", "Person Phone",
              "Contact Phone", "Sanitized Phone"),
    "company_phone": ("Company Phone", "Company Phone Number", "Account Phone",
                      "Organization Phone"),
    "do_not_call": ("Do Not Call", "DNC", "Do Not Call Flag"),
    "sub_departments": ("Sub Departments", "Subdepartments", "Sub Department",
                        "Person Sub Departments"),
    "linkedin_url": ("Person Linkedin Url", "Person LinkedIn", "LinkedIn", "LinkedIn Url",
                     "LinkedIn Link", "LinkedIn Profile", "LinkedIn Profile Url",
                     "Contact LinkedIn Url", "Person LinkedIn Link"),
    "company_linkedin_url": ("Company Linkedin Url", "Company LinkedIn", "Company LinkedIn Link",
                             "Company LinkedIn Profile", "Organization LinkedIn Url",
                             "Account LinkedIn Url"),
    "city": ("City", "Person City", "Contact City", "Location City"),
    "state": ("State", "Person State", "Contact State", "Location State",
              "State/Province", "Province"),
    "country": ("Country", "Person Country", "Contact Country", "Location Country"),
    "company_name": ("Company Name", "Company", "Organization Name", "Organization",
                     "Account Name", "Company Legal Name"),
    "company_name_for_emails": ("Company Name for Emails", "Company Name for Email"),
    "website": ("Website", "Company Website", "Company Website Full", "Website Url",
                "Company Website Url", "Company Url", "Domain", "Company Domain",
                "Website Domain", "Organization Website", "Organization Domain",
                "Account Website", "Account Domain"),
    "industry": ("Industry", "Company Industry", "Organization Industry", "Account Industry"),
    "employees": ("# Employees", "Employees", "Number of Employees", "No. of Employees",
                  "Employee Count", "Num Employees", "Estimated Num Employees",
                  "Company Employees", "Company Employee Count", "Headcount", "Company Headcount",
                  "Company Size"),
    "annual_revenue": ("Annual Revenue", "Revenue", "Company Revenue", "Company Annual Revenue",
                       "Organization Annual Revenue"),
    "total_funding": ("Total Funding", "Total Funding Amount", "Company Total Funding"),
    "company_city": ("Company City", "Organization City", "Account City"),
    "company_state": ("Company State", "Organization State", "Account State"),
    "company_country": ("Company Country", "Organization Country", "Account Country"),
    "company_address": ("Company Address", "Company Full Address", "Company Street Address",
                        "Organization Address", "Account Address"),
    "keywords": ("Keywords", "Company Keywords", "Organization Keywords"),
    "technologies": ("Technologies", "Technology", "Tech Stack", "Company Technologies"),
    "sic_codes": ("SIC Codes", "SIC Code", "Company SIC Codes", "Company SIC Code"),
    "naics_codes": ("NAICS Codes", "NAICS Code", "Company NAICS Codes", "Company NAICS Code"),
    "facebook_url": ("Facebook Url", "Company Facebook Url", "Organization Facebook Url",
                     "Facebook Page"),
    "twitter_url": ("Twitter Url", "Company Twitter Url", "Organization Twitter Url",
                    "X Url"),
    "latest_funding": ("Latest Funding", "Latest Funding Type", "Latest Funding Round",
                       "Last Funding Type"),
    "latest_funding_amount": ("Latest Funding Amount", "Last Funding Amount"),
    "last_raised_at": ("Last Raised At", "Latest Funding Date", "Last Funding Date"),
    "apollo_contact_id": ("Apollo Contact Id", "Apollo Person Id"),
    "apollo_account_id": ("Apollo Account Id",),
}  # fmt: skip

_NON_ALNUM = re.compile(r"[\W_]+")
_DUPLICATE_SUFFIX = re.compile(r"\s*\(\d+\)\s*$")


def normalize_header(header: str) -> str:
    """Lowercase and keep only letters and digits (``"# Employees"`` -> ``"employees"``)."""
    return _NON_ALNUM.sub("", header.casefold())


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for canonical in CANONICAL_FIELDS:
        for alias in (canonical, *_RAW_ALIASES[canonical]):
            key = normalize_header(alias)
            other = index.setdefault(key, canonical)
            if other != canonical:  # pragma: no cover - guarded by a test
                raise AssertionError(f"alias {alias!r} maps to both {other} and {canonical}")
    return index


#: Normalised alias -> canonical name.
ALIASES: Mapping[str, str] = MappingProxyType(_build_alias_index())

#: Batch-item identity column -> canonical field it is taken from (at launch, in SQL;
#: ``person_name`` falls back to "first last" when the file has no name column).
IDENTITY_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "company_name": "company_name",
        "company_domain": "website",
        "linkedin_url": "linkedin_url",
        "industry": "industry",
        "person_name": "person_name",
        "email": "email",
        "title": "title",
    }
)


@dataclass(slots=True)
class HeaderMap:
    """The result of :func:`map_headers`.

    ``canonical``: canonical name -> the header it is read from (first header wins).
    ``unmapped``: headers that match no alias, in file order.
    ``conflicts``: ``(ignored_header, canonical_name)`` for headers whose canonical name was
    already taken by an earlier header.
    """

    canonical: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)

    def header_for(self, canonical: str) -> str | None:
        return self.canonical.get(canonical)


def map_headers(headers: list[str]) -> HeaderMap:
    """Map file headers to canonical names (see the module docstring for the matching rule)."""
    result = HeaderMap()
    for header in headers:
        key = normalize_header(_DUPLICATE_SUFFIX.sub("", header))
        canonical = ALIASES.get(key)
        if canonical is None:
            result.unmapped.append(header)
        elif canonical in result.canonical:
            result.conflicts.append((header, canonical))
        else:
            result.canonical[canonical] = header
    return result
