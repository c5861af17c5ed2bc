"""The built-in Apollo steps' names and the columns of the tables they write: the split and
consolidation steps write these columns and export reads them back, so both import them from
here rather than from each other."""

from __future__ import annotations

SPLIT = "split_raw_apollo_scrape_data_into_two_tables"
CONSOLIDATE = "consolidate_final_leads"
NAME_STEP = "normalize_company_name"
DOMAIN_STEP = "normalize_company_domain"
CORE_STEP = "normalize_all_core_values"
BUILTIN_STEPS = frozenset({SPLIT, CONSOLIDATE, NAME_STEP, DOMAIN_STEP, CORE_STEP, "noop"})
"""Steps whose results are not enrichment: they are the consolidated columns themselves."""

COMPANY_COLUMNS = (
    "name",
    "domain",
    "linkedin_url",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "city",
    "state",
    "country_code",
    "state_code",
    "phone",
    "address",
    "sic_codes",
    "naics_codes",
    "facebook_url",
    "twitter_url",
    "latest_funding",
    "latest_funding_amount",
    "last_raised_at",
)
PERSON_CELL_COLUMNS = (
    "first_name",
    "last_name",
    "full_name",
    "title",
    "email",
    "phone",
    "linkedin_url",
    "city",
    "state",
    "country_code",
)
"""The ``people`` columns the split writes, from the row's cells when no core values exist."""
PERSON_COLUMNS = (
    *PERSON_CELL_COLUMNS,
    "state_code",
    "sub_departments",
    "email_status",
    "phone_type",
    "phone_extension",
    "direct_phone",
    "mobile_phone",
    "do_not_call",
)
LEAD_COLUMNS = (
    "first_name",
    "last_name",
    "full_name",
    "title",
    "seniority",
    "department",
    "sub_departments",
    "email",
    "email_status",
    "email_valid",
    "phone",
    "phone_type",
    "phone_extension",
    "direct_phone",
    "mobile_phone",
    "corporate_phone",
    "do_not_call",
    "person_linkedin_url",
    "city",
    "state",
    "state_code",
    "country_code",
    "company_name",
    "company_domain",
    "company_linkedin_url",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "latest_funding",
    "latest_funding_amount",
    "last_raised_at",
    "company_address",
    "company_city",
    "company_state",
    "company_state_code",
    "company_country_code",
    "sic_codes",
    "naics_codes",
    "facebook_url",
    "twitter_url",
    "keywords",
    "technologies",
    "apollo_contact_id",
    "apollo_account_id",
)
LEAD_LISTS = ("sub_departments", "sic_codes", "naics_codes", "keywords", "technologies")
"""The ``final_leads`` columns that hold a list (JSON): never null, an empty list instead."""
LEAD_LIMITS = {
    "seniority": 20,
    "department": 40,
    "apollo_contact_id": 100,
    "apollo_account_id": 100,
    "country_code": 2,
    "company_country_code": 2,
}
"""The bounded ``final_leads`` columns: a longer value would fail the whole chunk on Postgres."""
