"""Seniority and department from Apollo values and job titles.

Seniority vocabulary: owner, founder, c_suite, partner, vp, head, director, manager, senior,
entry, intern. Apollo's own ``Seniority`` column wins when it maps to the vocabulary;
otherwise the title is classified with ordered keyword rules (the first rule that matches
wins, most senior first, so "Founder & CEO" is founder and "VP Engineering Manager" is vp).
"""

from __future__ import annotations

import re
from functools import lru_cache

from enrichflow.normalize._text import ascii_fold

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

# Title patterns, most senior first, in English, Portuguese, Spanish, French and German.
# Matched on a lowercased, accent-folded title with punctuation spaced (``Diretor`` and
# ``Geschäftsführer`` are matched as ``diretor`` and ``geschaftsfuhrer``).
_TITLE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (level, re.compile(pattern))
    for level, pattern in (
        (
            "intern",
            r"\b(?:intern|internship|trainee|apprentice|estagiari[oa]|estagio|jovem aprendiz|"
            r"aprendiz|becari[oa]|practicante|pasante|stagiaire|alternant|alternante|apprentie?|"
            r"praktikant|praktikantin|werkstudent|werkstudentin|auszubildender?|azubi)\b",
        ),
        (
            "founder",
            r"\b(?:co ?-? ?founder|cofounder|founder|founding partner|"
            r"(?:mit)?grunder(?:in)?|(?:co ?-? ?)?fondat(?:eur|rice)|(?:co ?-? ?)?fundador(?:a)?|"
            r"soci[oa] fundador(?:a)?)\b",
        ),
        (
            "owner",
            r"\b(?:owner|co ?-? ?owner|proprietor|inhaber(?:in)?|eigentumer(?:in)?|"
            r"propriet[aá]ri[oa]|propietari[oa]|duen[oa]|proprietaire)\b",
        ),
        (
            "c_suite",
            r"\b(?:c[a-z]{1,2}o|chief|president|presidente|presidenta|pdg|ceo|cto|cfo|coo|cmo|cio|"
            r"ciso|cro|cpo|cdo|cco|managing director|general manager|gm|"
            r"geschaftsfuhrer(?:in)?|geschaeftsfuehrer(?:in)?|vorstand|vorstandsvorsitzender?|"
            r"directeur general|directrice generale|director general|directora general|"
            r"diretor(?:a)? geral|gerente general|gerente geral|diretor executivo|"
            r"diretora executiva|director ejecutivo|directora ejecutiva|directeur executif|"
            r"executive director|chairman|chairwoman|chairperson|chair|board member|md)\b",
        ),
        (
            "partner",
            r"(?<!business )(?<!acquisition )(?<!hr )(?<!people )(?<!channel )(?<!alliance )"
            r"(?<!success )(?<!sales )(?<!account )(?<!strategic )(?<!technology )"
            r"\bpartner\b(?! (?:manager|marketing|success|development|sales|account|program))"
            r"|\bprincipal\b(?! (?:engineer|scientist|software|product|designer|architect|"
            r"consultant|analyst|developer|data|program|researcher|ux|ui|technical|solutions|"
            r"security|account|sales|mechanical|electrical))"
            r"|\b(?:soci[oa]|associee?|teilhaber(?:in)?|gesellschafter(?:in)?)\b",
        ),
        (
            "vp",
            r"\b(?:vp|svp|evp|avp|vice ?-? ?presidente?|vice ?-? ?presidenta|vicepresidente?|"
            r"vicepresidenta|vice-president)\b",
        ),
        (
            "head",
            r"\b(?:head|(?!team)\w*leiter(?:in)?|leitung|responsable|responsavel|jef[ea]|chefe)\b",
        ),
        (
            "director",
            r"\b(?:director|directora|directeur|directrice|direktor|direktorin|diretor|diretora|"
            r"direcao|direccion|dir)\b",
        ),
        (
            "manager",
            r"\b(?:\w*manager(?:in)?|mgr|managing|lead|leader|supervisor|supervisora|team lead|"
            r"teamleiter|teamleiterin|gerente|gestor|gestora|superintendent|superintendente|"
            r"foreman|administrator|chef de|encargad[oa]|encarregad[oa])\b",
        ),
        (
            "senior",
            r"\b(?:senior|sr|staff|principal|lead|expert|experte|expertin|specialist ii|"
            r"architect|consultant|consultor|consultora|berater|beraterin|scientist|"
            r"engineer iii|iii|iv)\b",
        ),
        (
            "entry",
            r"\b(?:junior|jr|associate|assistant|analyst|engineer|developer|representative|"
            r"rep|specialist|coordinator|officer|agent|clerk|technician|designer|recruiter|"
            r"accountant|consultant|advisor|executive|writer|student|graduate|trainee|"
            r"member|staff|worker|operator|nurse|teacher|sales|account|"
            r"coordenador(?:a)?|coordinador(?:a)?|coordinat(?:eur|rice)|koordinator(?:in)?|"
            r"analista|analyste|analytiker(?:in)?|assistente|asistente|assistante|auxiliar|aux|"
            r"tecnic[oa]|technicien(?:ne)?|techniker(?:in)?|engenheir[oa]|ingenier[oa]|"
            r"ingenieure?|projetista|especialista|specialiste|spezialist(?:in)?|vendedor(?:a)?|"
            r"representante|ejecutiv[oa]|executiv[oa]|atendente|recepcionista|secretari[oa]|"
            r"mitarbeiter(?:in)?|sachbearbeiter(?:in)?|referent(?:in)?|chargee?|"
            r"conseill(?:er|ere)|agente|operador(?:a)?|desenvolvedor(?:a)?|desarrollador(?:a)?|"
            r"developpeu(?:r|se)|\w*entwickler(?:in)?|programador(?:a)?|comprador(?:a)?|"
            r"acheteu(?:r|se)|attorney|lawyer|paralegal|advogad[oa]|abogad[oa]|avocate?|"
            r"rechtsanwalt(?:in)?|"
            r"contador(?:a)?|comptable|buchhalter(?:in)?|professor(?:a)?|profesor(?:a)?|"
            r"enseignante?|lehrer(?:in)?|enfermeir[oa]|enfermer[oa]|infirmiere?)\b",
        ),
    )
)

_C_ABBREV_EXCLUDE = frozenset({"cto", "ceo", "cfo", "coo", "cmo", "cio", "cro", "cpo", "cdo"})
_OTHER_C_ABBREV = frozenset({"ciso", "cco", "cso", "cao", "cxo", "clo", "cho", "cbo"})
_CHIEF_OF_STAFF_RE = re.compile(r"\bchief of staff\b")
# An assistant to the management ("Asistente de Dirección") is not the management.
_ASSISTANT_OF_RE = re.compile(
    r"\b(?:asistente|assistente|assistante|secretari[oa]|auxiliar) (?:de |da |a )?"
    r"(?:la )?(?:direccion|direcao|direction|diretoria|gerencia|presidencia)\b"
)
_NOT_C_SUITE = re.compile(r"\b(?:to the|assistant to|executive assistant|office of the)\b")
_VICE_PRESIDENT_RE = re.compile(r"\bvice ?-? ?presidente?a?\b|\bvicepresident[ea]?\b")


def _prep(title: str) -> str:
    text = ascii_fold(title).lower().replace("&", " and ").replace("/", " / ")
    text = text.replace(",", " , ").replace(".", " . ")
    text = re.sub(r"[()\[\]|;:]", " ", text)
    return " ".join(text.split())


@lru_cache(maxsize=32768)
def _from_title(title: str) -> str | None:
    text = _prep(title)
    if not text:
        return None
    if _CHIEF_OF_STAFF_RE.search(text):
        return "manager"  # a staff role despite "chief"
    if _ASSISTANT_OF_RE.search(text):
        return "entry"
    for level, pattern in _TITLE_RULES:
        if level == "c_suite":
            if _NOT_C_SUITE.search(text):
                continue
            # "Vice President" is vp, not the "president" of c_suite.
            match = pattern.search(_VICE_PRESIDENT_RE.sub(" ", text))
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
         r"personnel|workforce|hiring|payroll|compensation|benefits|learning and development|"
         r"recursos humanos|rh|rrhh|ressources humaines|personalabteilung|personalwesen|"
         r"personalleit\w*|personalreferent\w*|personalentwicklung|recrutamento|reclutamiento|"
         r"recrutement|recrutador\w*|reclutador\w*|departamento pessoal)\b"),
        ("legal", r"\b(?:legal|counsel|attorney|lawyer|paralegal|compliance|clo|solicitor|"
         r"notary|privacy officer|regulatory|juridic[oa]|juridique|abogad[oa]|advogad[oa]|"
         r"avocate?|rechtsanwalt\w*|jurist(?:in)?|conformite)\b"),
        ("finance", r"\b(?:finance|financial|cfo|accounting|accountant|controller|treasur\w*|"
         r"tax|audit\w*|fp and a|bookkeep\w*|billing|payable|receivable|investor relations|"
         r"financeir[oa]|financas|finanzas|financier[oa]?|financiere|finanzen|contabil\w*|"
         r"contable|contador(?:a)?|comptab\w*|buchhalt\w*|controlling|tesoraria|tesoreria|"
         r"tresorerie|fiscal|tributari[oa]|faturamento|facturacion)\b"),
        ("design", r"\b(?:design\w*|ux|ui|creative|art director|graphic|illustrat\w*|"
         r"disenador(?:a)?|diseno|graphiste|gestalter(?:in)?)\b"),
        ("data", r"\b(?:data|analytics|machine learning|ml|bi|business intelligence|"
         r"cdo|statistic\w*|dados|datos|donnees|daten)\b"),
        ("product", r"\b(?:product|cpo|produto|producto|produit|produkt(?:manage\w*)?)\b"),
        ("customer_success", r"\b(?:customer success|client success|csm|account management|"
         r"customer experience|cx|onboarding|sucesso do cliente|exito del cliente)\b"),
        ("support", r"\b(?:support|help ?desk|service desk|customer service|customer care|"
         r"suporte|soporte|atendimento|atencion al cliente|service client|kundenservice|"
         r"kundendienst)\b"),
        ("marketing", r"\b(?:marketing|cmo|brand|growth|seo|content|communications?|pr|"
         r"public relations|demand gen\w*|social media|digital marketing|events?|mercadeo|"
         r"mercadotecnia|comunicacao|comunicacion|kommunikation)\b"),
        ("sales", r"\b(?:sales|cro|account executive|ae|sdr|bdr|business development|"
         r"bizdev|revenue|partnerships?|channel|commercial|account manager|key account|"
         r"comercial|vendas|ventas|ventes?|vertrieb\w*|verkauf\w*|commerciale?|vendedor(?:a)?|"
         r"negocios|new business)\b"),
        ("it", r"\b(?:it|information technology|cio|ciso|security|infosec|network|"
         r"sysadmin|system administrator|systems administrator|helpdesk|ti|tic|informatica|"
         r"informatique|seguranca da informacao|seguridad informatica|edv)\b"),
        ("engineering", r"\b(?:engineer\w*|developer|software|cto|devops|sre|programmer|"
         r"architect|technical|technology|r and d|research and development|qa|"
         r"quality assurance|firmware|frontend|front end|backend|back end|full stack|mobile|"
         r"engenh\w*|ingenier\w*|ingenieur\w*|desenvolvedor(?:a)?|desarrollador(?:a)?|"
         r"developpeu(?:r|se)|\w*entwickl\w*|programador(?:a)?|projetista|tecnologia)\b"),
        ("procurement", r"\b(?:procurement|purchasing|buyer|sourcing|supply chain|logistics|"
         r"compras|comprador(?:a)?|achats?|acheteu(?:r|se)|einkauf\w*|suprimentos|"
         r"abastecimiento|aprovisionamiento|approvisionnement|logistica|logistique|logistik)\b"),
        ("operations", r"\b(?:operations?|ops|coo|executive assistant|personal assistant|"
         r"administrative assistant|facilities|office manager|administration|"
         r"admin|manufacturing|production|plant|warehouse|operacoes|operaciones|betrieb\w*|"
         r"producao|produccion|produktion\w*|administrativ[oa]|administracao|administracion|"
         r"verwaltung|escritorio|oficina|manutencao|mantenimiento|maintenance|instandhaltung|"
         r"seguranca do trabalho|qualidade|calidad|qualite|qualitat|frotas|flota|obras)\b"),
        ("consulting", r"\b(?:consult\w*|advisory|conseil|beratung|berater(?:in)?)\b"),
        ("education", r"\b(?:teacher|professor|lecturer|educat\w*|principal of|dean|tutor|"
         r"professora|profesor(?:a)?|enseignante?|lehrer(?:in)?|docente|educacao|educacion)\b"),
        ("medical", r"\b(?:physician|nurse|doctor|clinical|medical|surgeon|pharmac\w*|"
         r"dentist|therapist|medic[oa]|medecin|arzt|arztin|enfermeir[oa]|enfermer[oa]|"
         r"infirmiere?|farmaceutic[oa]|clinic[oa])\b"),
        ("executive", r"\b(?:ceo|chief executive|chief of staff|founder|co ?-? ?founder|"
         r"cofounder|owner|"
         r"president|managing director|general manager|chairman|chair|board|"
         r"executive director|partner|entrepreneur|soci[oa]|associee?|"
         r"(?:co ?-? ?)?fundador(?:a)?|(?:co ?-? ?)?fondat(?:eur|rice)|(?:mit)?grunder(?:in)?|"
         r"diretor(?:a)? executiv[oa]|directrice generale|directora general|"
         r"directora ejecutiva|propriet[aá]ri[oa]|propietari[oa]|duen[oa]|inhaber(?:in)?|"
         r"geschaftsfuhr\w*|diretor(?:a)? geral|director general|directeur general|"
         r"presidente|pdg|vorstand\w*|gerente geral|gerente general|diretor executivo|"
         r"director ejecutivo)\b"),
    )
)  # fmt: skip

# Apollo's Departments values (and their old ``master_`` keys) in `DEPARTMENTS`' words.
_APOLLO_DEPARTMENTS = {
    "c suite": "executive",
    "csuite": "executive",
    "executive": "executive",
    "founder": "executive",
    "engineering technical": "engineering",
    "engineering and technical": "engineering",
    "engineering": "engineering",
    "information technology": "it",
    "operations": "operations",
    "sales": "sales",
    "finance": "finance",
    "accounting": "finance",
    "human resources": "human_resources",
    "marketing": "marketing",
    "design": "design",
    "product": "product",
    "product management": "product",
    "consulting": "consulting",
    "education": "education",
    "legal": "legal",
    "medical health": "medical",
    "medical and health": "medical",
    "data science": "data",
    "data": "data",
    "support": "support",
    "customer service": "support",
    "customer success": "customer_success",
    "procurement": "procurement",
    "purchasing": "procurement",
}
_APOLLO_DEPT_SPLIT_RE = re.compile(r"[\s_&/-]+")


@lru_cache(maxsize=4096)
def department_from_apollo(raw: str | None) -> str | None:
    """Department from Apollo's ``Departments`` cell (``C-Suite, Finance``): the first
    functional one, as a functional VP's cell names C-Suite first; else executive."""
    if raw is None:
        return None
    found: list[str] = []
    for item in raw.split(","):
        key = _APOLLO_DEPT_SPLIT_RE.sub(" ", item.lower()).strip().removeprefix("master ")
        department = _APOLLO_DEPARTMENTS.get(key)
        if department is not None:
            found.append(department)
    functional = [department for department in found if department != "executive"]
    return functional[0] if functional else (found[0] if found else None)


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
