"""Seniority and department from Apollo values and job titles.

Seniority vocabulary: owner, founder, c_suite, partner, vp, head, director, manager, senior,
entry, intern. Apollo's own ``Seniority`` column wins when it maps to the vocabulary;
otherwise the title is classified with ordered keyword rules (the first rule that matches
wins, most senior first, so "Founder & CEO" is founder and "VP Engineering Manager" is vp).
"""

from __future__ import annotations

import re
from functools import lru_cache

SENIORITY_LEVELS = (
    "owner",
    "founder",
    "c_suite",
    "partner",
    "vp",
    "head",
    "director",
    "manager",
    "senior",
    "entry",
    "intern",
)

_APOLLO_MAP: dict[str, str] = {
    "owner": "owner",
    "founder": "founder",
    "cofounder": "founder",
    "c suite": "c_suite",
    "c_suite": "c_suite",
    "csuite": "c_suite",
    "c-suite": "c_suite",
    "c level": "c_suite",
    "clevel": "c_suite",
    "executive": "c_suite",
    "partner": "partner",
    "vp": "vp",
    "vice president": "vp",
    "head": "head",
    "director": "director",
    "manager": "manager",
    "senior": "senior",
    "entry": "entry",
    "entry level": "entry",
    "junior": "entry",
    "intern": "intern",
    "training": "intern",
}

# Title patterns, most senior first. Matched on a lowercased title with punctuation spaced.
_TITLE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (level, re.compile(pattern))
    for level, pattern in (
        (
            "intern",
            r"\b(?:intern|internship|trainee|stagiaire|praktikant|werkstudent|apprentice)\b",
        ),
        (
            "founder",
            r"\b(?:co ?-? ?founder|cofounder|founder|founding partner|"
            r"gründer|fondateur|fundador)\b",
        ),
        ("owner", r"\b(?:owner|co ?-? ?owner|proprietor|inhaber)\b"),
        (
            "c_suite",
            r"\b(?:c[a-z]{1,2}o|chief|president|ceo|cto|cfo|coo|cmo|cio|ciso|cro|cpo|cdo|cco|"
            r"managing director|general manager|gm|geschäftsführer|geschaftsfuhrer|"
            r"directeur général|directeur general|director general|executive director|"
            r"chairman|chairwoman|chairperson|chair|board member|md)\b",
        ),
        (
            "partner",
            r"(?<!business )(?<!acquisition )(?<!hr )(?<!people )(?<!channel )(?<!alliance )"
            r"(?<!success )(?<!sales )(?<!account )(?<!strategic )(?<!technology )"
            r"\bpartner\b(?! (?:manager|marketing|success|development|sales|account|program))"
            r"|\bprincipal\b(?! (?:engineer|scientist|software|product|designer|architect|"
            r"consultant|analyst|developer|data|program|researcher|ux|ui|technical|solutions|"
            r"security|account|sales|mechanical|electrical))",
        ),
        ("vp", r"\b(?:vp|svp|evp|avp|vice ?-? ?president|vice-president)\b"),
        ("head", r"\b(?:head|leiter|leiterin|responsable)\b"),
        ("director", r"\b(?:director|directeur|directora|direktor|dir)\b"),
        (
            "manager",
            r"\b(?:manager|mgr|managing|lead|leader|supervisor|team lead|teamleiter|"
            r"gerente|coordinator|superintendent|foreman|administrator)\b",
        ),
        (
            "senior",
            r"\b(?:senior|sr|staff|principal|lead|expert|specialist ii|architect|consultant|"
            r"scientist|engineer iii|iii|iv)\b",
        ),
        (
            "entry",
            r"\b(?:junior|jr|associate|assistant|analyst|engineer|developer|representative|"
            r"rep|specialist|coordinator|officer|agent|clerk|technician|designer|recruiter|"
            r"accountant|consultant|advisor|executive|writer|student|graduate|trainee|"
            r"member|staff|worker|operator|nurse|teacher|sales|account)\b",
        ),
    )
)

_C_ABBREV_EXCLUDE = frozenset({"cto", "ceo", "cfo", "coo", "cmo", "cio", "cro", "cpo", "cdo"})
_OTHER_C_ABBREV = frozenset({"ciso", "cco", "cso", "cao", "cxo", "clo", "cho", "cbo"})
_CHIEF_OF_STAFF_RE = re.compile(r"\bchief of staff\b")
_NOT_C_SUITE = re.compile(r"\b(?:to the|assistant to|executive assistant|office of the)\b")
_VICE_PRESIDENT_RE = re.compile(r"\bvice ?-? ?president\b")


def _prep(title: str) -> str:
    text = title.lower().replace("&", " and ").replace("/", " / ").replace(",", " , ")
    text = re.sub(r"[()\[\]|;:]", " ", text)
    return " ".join(text.split())


@lru_cache(maxsize=32768)
def _from_title(title: str) -> str | None:
    text = _prep(title)
    if not text:
        return None
    if _CHIEF_OF_STAFF_RE.search(text):
        return "manager"  # a staff role despite "chief"
    for level, pattern in _TITLE_RULES:
        if level == "c_suite":
            if _NOT_C_SUITE.search(text):
                continue
            if _VICE_PRESIDENT_RE.search(text):
                continue  # "Vice President" is vp, not the "president" of c_suite
            match = pattern.search(text)
            if match is None:
                continue
            word = match.group(0)
            # c?o pattern: accept known C-level acronyms only (not "coo" in "cooperative").
            if (
                re.fullmatch(r"c[a-z]{1,2}o", word)
                and word not in _C_ABBREV_EXCLUDE
                and word not in _OTHER_C_ABBREV
            ):
                continue
            return level
        if pattern.search(text):
            return level
    return None


def normalize_seniority(apollo_value: str | None, title: str | None) -> str | None:
    """Seniority in the fixed vocabulary: Apollo's value first, else derived from the title."""
    if apollo_value is not None:
        key = " ".join(apollo_value.strip().lower().replace("_", " ").split())
        key = key.replace("-", " ") if key not in _APOLLO_MAP else key
        mapped = _APOLLO_MAP.get(key) or _APOLLO_MAP.get(key.replace(" ", ""))
        if mapped is not None:
            return mapped
    if title is None:
        return None
    return _from_title(title)


DEPARTMENTS = (
    "executive",
    "engineering",
    "product",
    "design",
    "data",
    "sales",
    "marketing",
    "customer_success",
    "support",
    "finance",
    "legal",
    "human_resources",
    "operations",
    "it",
    "procurement",
    "consulting",
    "education",
    "medical",
)

_DEPT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (dept, re.compile(pattern))
    for dept, pattern in (
        ("human_resources", r"\b(?:hr|human resources?|people|talent|recruit\w*|chro|"
         r"personnel|workforce|hiring|payroll|compensation|benefits|learning and development)\b"),
        ("legal", r"\b(?:legal|counsel|attorney|lawyer|paralegal|compliance|clo|solicitor|"
         r"notary|privacy officer|regulatory)\b"),
        ("finance", r"\b(?:finance|financial|cfo|accounting|accountant|controller|treasur\w*|"
         r"tax|audit\w*|fp and a|bookkeep\w*|billing|payable|receivable|investor relations)\b"),
        ("design", r"\b(?:design\w*|ux|ui|creative|art director|graphic|illustrat\w*)\b"),
        ("data", r"\b(?:data|analytics|machine learning|ml|bi|business intelligence|"
         r"cdo|statistic\w*)\b"),
        ("product", r"\b(?:product|cpo)\b"),
        ("customer_success", r"\b(?:customer success|client success|csm|account management|"
         r"customer experience|cx|onboarding)\b"),
        ("support", r"\b(?:support|help ?desk|service desk|customer service|customer care)\b"),
        ("marketing", r"\b(?:marketing|cmo|brand|growth|seo|content|communications?|pr|"
         r"public relations|demand gen\w*|social media|digital marketing|events?)\b"),
        ("sales", r"\b(?:sales|cro|account executive|ae|sdr|bdr|business development|"
         r"bizdev|revenue|partnerships?|channel|commercial|account manager|key account)\b"),
        ("it", r"\b(?:it|information technology|cio|ciso|security|infosec|network|"
         r"sysadmin|system administrator|systems administrator|helpdesk)\b"),
        ("engineering", r"\b(?:engineer\w*|developer|software|cto|devops|sre|programmer|"
         r"architect|technical|technology|r and d|research and development|qa|"
         r"quality assurance|firmware|frontend|front end|backend|back end|full stack|mobile)\b"),
        ("procurement", r"\b(?:procurement|purchasing|buyer|sourcing|supply chain|logistics)\b"),
        ("operations", r"\b(?:operations?|ops|coo|executive assistant|personal assistant|"
         r"administrative assistant|facilities|office manager|administration|"
         r"admin|manufacturing|production|plant|warehouse)\b"),
        ("consulting", r"\b(?:consult\w*|advisory)\b"),
        ("education", r"\b(?:teacher|professor|lecturer|educat\w*|principal of|dean|tutor)\b"),
        ("medical", r"\b(?:physician|nurse|doctor|clinical|medical|surgeon|pharmac\w*|"
         r"dentist|therapist)\b"),
        ("executive", r"\b(?:ceo|chief executive|chief of staff|founder|co ?-? ?founder|"
         r"cofounder|owner|"
         r"president|managing director|general manager|chairman|chair|board|"
         r"executive director|partner|entrepreneur)\b"),
    )
)  # fmt: skip


@lru_cache(maxsize=32768)
def department_from_title(title: str | None) -> str | None:
    """Department (see `DEPARTMENTS`) a job title belongs to, or None when unclear.

    Functional words beat executive ones: "VP of Sales" is sales, "CTO" is engineering,
    "CEO" and "Founder" are executive.
    """
    if title is None:
        return None
    text = _prep(title)
    if not text:
        return None
    for dept, pattern in _DEPT_RULES:
        if pattern.search(text):
            return dept
    return None
