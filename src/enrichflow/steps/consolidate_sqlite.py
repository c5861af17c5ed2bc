"""The SQLite path of ``consolidate_final_leads``: SQLite copies the ``final_leads`` columns of
plain items from their stored results itself, so Python never decodes those payloads.

What ``consolidate._lead_row`` computes for an item whose results are those of the cleaning
steps (and the split) and nothing else: every column is a value of the core step's result, the
name and domain results, or, when one of those two is missing, a value computed from the row
and passed in. The INSERT writes only the items whose results allow it (``_SQL_WRITABLE``);
``consolidate_final_leads`` sends the others to the Python path: a core result without
``industry`` and the Apollo ids (stored by an older ``normalize_core_values``), a name or
domain result without a value, or an enrichment result stored since ``result_kinds`` looked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from enrichflow.columns import (
    BUILTIN_STEPS,
    CORE_STEP,
    DOMAIN_STEP,
    LEAD_COLUMNS,
    LEAD_LIMITS,
    LEAD_LISTS,
    NAME_STEP,
    PERSON_COLUMNS,
)
from enrichflow.db import jsoncodec
from enrichflow.db.upsert import sqlite_timestamp
from enrichflow.steps.base import StepContext
from enrichflow.steps.company_values import company_domain_of_row, company_name_of_row

_BUILTIN_LIST = ", ".join(f"'{step}'" for step in sorted(BUILTIN_STEPS))
# Index-only (the unique index on item and step covers both columns): which results an item
# has, not what they hold; ``_CONSOLIDATE_SQLITE`` checks the payloads it reads anyway.
_RESULT_KINDS_SQLITE = f"""
SELECT json_group_array(json_array(item_id, has_name, has_domain, enriched)) FROM (
SELECT item_id, max(step_name = '{NAME_STEP}') AS has_name,
    max(step_name = '{DOMAIN_STEP}') AS has_domain,
    max(step_name NOT IN ({_BUILTIN_LIST})) AS enriched
FROM enrichment_results WHERE item_id IN (SELECT value FROM json_each(?1)) GROUP BY item_id)
"""
NO_RESULTS = (False, False, False)


def result_kinds(conn: Connection, item_ids: list[int]) -> dict[int, tuple[bool, bool, bool]]:
    """item id -> (has a company name result, has a company domain result, has a result of a
    step that is not a built-in one); items without any result are left out."""
    found = conn.exec_driver_sql(_RESULT_KINDS_SQLITE, (jsoncodec.dumps(item_ids),)).scalar_one()
    return {
        item: (bool(name), bool(domain), bool(enriched))
        for item, name, domain, enriched in jsoncodec.loads(found)
    }


def company_of_row(
    ctx: StepContext, has_name: bool, has_domain: bool
) -> tuple[str | None, str | None]:
    """The company name and domain of an item's row where it has no such result."""
    name = None if has_name else company_name_of_row(ctx)[0]
    return name, None if has_domain else company_domain_of_row(ctx)


def _lead_expression(column: str) -> str:
    """The SQL of one ``final_leads`` column, as ``_lead_row`` computes it."""
    if column == "company_name":
        value = "coalesce(nullif(name.payload ->> '$.company_name', ''), j.value ->> 1)"
    elif column == "company_domain":
        value = "coalesce(nullif(dom.payload ->> '$.company_domain', ''), j.value ->> 2)"
    elif column == "industry":
        value = "coalesce(core.payload ->> '$.industry', i.industry)"
    elif column in LEAD_LISTS:
        value = (
            f"CASE json_type(core.payload, '$.{column}') WHEN 'array' "
            f"THEN core.payload -> '$.{column}' ELSE '[]' END"
        )
    else:
        value = f"core.payload ->> '$.{column}'"
    limit = LEAD_LIMITS.get(column)
    if limit is not None:
        value = (
            f"CASE WHEN typeof({value}) = 'text' THEN substr({value}, 1, {limit}) ELSE {value} END"
        )
    return value


_SQL_FROM = f"""
FROM json_each(?1) AS j
CROSS JOIN batch_items AS i ON i.id = j.value ->> 0
JOIN enrichment_results AS core ON core.item_id = i.id AND core.step_name = '{CORE_STEP}'
LEFT JOIN enrichment_results AS name ON name.item_id = i.id AND name.step_name = '{NAME_STEP}'
LEFT JOIN enrichment_results AS dom ON dom.item_id = i.id AND dom.step_name = '{DOMAIN_STEP}'
"""
# json_type reuses the parse the column expressions need, which is cheaper than instr's scan.
_SQL_WRITABLE = f"""
WHERE json_type(core.payload, '$.apollo_account_id') IS NOT NULL
  AND (name.payload IS NULL OR coalesce(name.payload ->> '$.company_name', '') <> '')
  AND (dom.payload IS NULL OR coalesce(dom.payload ->> '$.company_domain', '') <> '')
  AND NOT EXISTS (SELECT 1 FROM enrichment_results AS r WHERE r.item_id = i.id
    AND r.step_name NOT IN ({_BUILTIN_LIST}))
"""
_SQL_WRITABLE_ITEMS = f"SELECT json_group_array(i.id) {_SQL_FROM} {_SQL_WRITABLE}"
_CONSOLIDATE_SQLITE = f"""
INSERT INTO final_leads (batch_id, item_id, {", ".join(LEAD_COLUMNS)}, enrichment, created_at)
SELECT i.batch_id, i.id, {", ".join(map(_lead_expression, LEAD_COLUMNS))}, '{{}}', ?2
{_SQL_FROM} {_SQL_WRITABLE}
ON CONFLICT (item_id) DO UPDATE SET
{", ".join(f"{c} = excluded.{c}" for c in (*LEAD_COLUMNS, "enrichment"))}
"""
_PEOPLE_FROM_LEADS_SQLITE = f"""
UPDATE people SET {
    ", ".join(
        f"{c} = f.{'person_linkedin_url' if c == 'linkedin_url' else c}" for c in PERSON_COLUMNS
    )
}
FROM final_leads AS f
WHERE f.item_id = people.item_id AND people.item_id IN (SELECT value FROM json_each(?1))
"""
_LEAD_IDS_SQLITE = (
    "SELECT json_group_array(item_id), json_group_array(id) FROM final_leads "
    "WHERE item_id IN (SELECT value FROM json_each(?1))"
)


def consolidate_in_sql(conn: Connection, items: list[list[Any]]) -> dict[int, int]:
    """Write the ``final_leads`` rows of items without enrichment results (``[item_id,
    company name, company domain]`` each, the last two None where the item has that result)
    and refresh their ``people`` rows, in SQL; item id -> final lead id of those written."""
    rows = jsoncodec.dumps(items)
    written = conn.exec_driver_sql(
        _CONSOLIDATE_SQLITE, (rows, sqlite_timestamp(conn, datetime.now(UTC)))
    )
    # Usually every item was written. Otherwise the same conditions, read in this transaction,
    # tell which, which is cheaper than RETURNING on every INSERT.
    if written.rowcount == len(items):
        ids = jsoncodec.dumps([item[0] for item in items])
    else:
        ids = conn.exec_driver_sql(_SQL_WRITABLE_ITEMS, (rows,)).scalar_one()
    conn.exec_driver_sql(_PEOPLE_FROM_LEADS_SQLITE, (ids,))
    found_items, leads = conn.exec_driver_sql(_LEAD_IDS_SQLITE, (ids,)).one()
    return dict(zip(jsoncodec.loads(found_items), jsoncodec.loads(leads), strict=True))
