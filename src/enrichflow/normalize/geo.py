"""Countries to ISO 3166-1 alpha-2 codes, states and provinces to ISO 3166-2 codes.

`pycountry` knows official names, common names and the alpha-2/alpha-3 codes; on top of it
we keep aliases that lead lists use but ISO does not (UK, England, USA, Holland, UAE, native
names such as Deutschland or España). Subdivisions are matched, within the country given, on
their ISO names (accents folded, "State of"/"County"/"Province" words dropped), the letters
after the country in their code (``CA`` is ``US-CA`` in the United States) and the English
names exports use where ISO lists the local one (Bavaria, Lombardy, North Holland).
Lookups are cached because lead files repeat the same handful of places on every row.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

from enrichflow.normalize._text import ascii_fold

# Keys are lower-case, accent-folded, with dots removed and whitespace collapsed.
_ALIASES: dict[str, str] = {
    # United Kingdom
    "uk": "GB",
    "u k": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    # United States
    "us": "US",
    "usa": "US",
    "u s": "US",
    "u s a": "US",
    "united states": "US",
    "united states of america": "US",
    "america": "US",
    "the united states": "US",
    "the united states of america": "US",
    # Others with frequent informal names
    "deutschland": "DE",
    "germany": "DE",
    "holland": "NL",
    "the netherlands": "NL",
    "netherlands": "NL",
    "nederland": "NL",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "korea republic of": "KR",
    "korea, republic of": "KR",
    "north korea": "KP",
    "korea south": "KR",
    "korea north": "KP",
    "russia": "RU",
    "russian federation": "RU",
    "uae": "AE",
    "u a e": "AE",
    "emirates": "AE",
    "united arab emirates": "AE",
    "czech republic": "CZ",
    "czechia": "CZ",
    "turkey": "TR",
    "turkiye": "TR",
    "vietnam": "VN",
    "viet nam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "taiwan": "TW",
    "hong kong": "HK",
    "hong kong sar": "HK",
    "macau": "MO",
    "macao": "MO",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "macedonia": "MK",
    "north macedonia": "MK",
    "vatican": "VA",
    "vatican city": "VA",
    "palestine": "PS",
    "kosovo": "XK",
    "brunei": "BN",
    "micronesia": "FM",
    "st lucia": "LC",
    "saint lucia": "LC",
    "st kitts and nevis": "KN",
    "st vincent and the grenadines": "VC",
    "trinidad & tobago": "TT",
    "bosnia": "BA",
    "bosnia & herzegovina": "BA",
    "antigua & barbuda": "AG",
    "congo": "CG",
    "dr congo": "CD",
    "drc": "CD",
    "democratic republic of the congo": "CD",
    "the bahamas": "BS",
    "the gambia": "GM",
    "east timor": "TL",
    "prc": "CN",
    "mainland china": "CN",
    "people's republic of china": "CN",
    "ksa": "SA",
    "saudi": "SA",
    # Native spellings seen in exports
    "espana": "ES",
    "italia": "IT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "osterreich": "AT",
    "brasil": "BR",
    "belgique": "BE",
    "belgie": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "polska": "PL",
    "suomi": "FI",
    "magyarorszag": "HU",
    "hellas": "GR",
    "ellada": "GR",
    "nippon": "JP",
    "nihon": "JP",
    "zhongguo": "CN",
    "rossiya": "RU",
    "eire": "IE",
    "republic of ireland": "IE",
}

_STRIP_RE = re.compile(r"[.\s]+")


def _key(raw: str) -> str:
    text = ascii_fold(raw).lower().replace(".", " ").replace("’", "'")
    text = text.replace("(", " ").replace(")", " ")
    return _STRIP_RE.sub(" ", text).strip(" ,;")


@lru_cache(maxsize=4096)
def country_code(raw: str | None) -> str | None:
    """Return the ISO 3166-1 alpha-2 code for a country name/code/alias, or None."""
    if raw is None:
        return None
    key = _key(raw)
    if not key:
        return None
    alias = _ALIASES.get(key)
    if alias is not None:
        return alias
    compact = key.replace(" ", "")
    if len(compact) == 2 and compact.isalpha():
        hit = pycountry.countries.get(alpha_2=compact.upper())
        return str(hit.alpha_2) if hit is not None else None
    if len(compact) == 3 and compact.isalpha():
        hit = pycountry.countries.get(alpha_3=compact.upper())
        if hit is not None:
            return str(hit.alpha_2)
    for candidate in (raw.strip(), key):
        try:
            found = pycountry.countries.lookup(candidate)
        except LookupError:
            continue
        return str(found.alpha_2)
    if key.startswith("the "):
        return country_code(key[4:])
    return None


# English (and other common) names of subdivisions whose ISO name is the local one.
_SUBDIVISION_ALIASES: dict[str, dict[str, str]] = {
    "AE": {"dubai": "AE-DU", "abu dhabi": "AE-AZ", "sharjah": "AE-SH", "ajman": "AE-AJ",
           "ras al khaimah": "AE-RK", "fujairah": "AE-FU", "umm al quwain": "AE-UQ"},
    "BR": {"federal district": "BR-DF"},
    "BE": {"flanders": "BE-VLG", "wallonia": "BE-WAL", "brussels": "BE-BRU",
           "brussels capital region": "BE-BRU"},
    "CH": {"geneva": "CH-GE", "bern": "CH-BE", "lucerne": "CH-LU", "st gallen": "CH-SG",
           "basel city": "CH-BS", "basel country": "CH-BL", "grisons": "CH-GR"},
    "DE": {"bavaria": "DE-BY", "lower saxony": "DE-NI", "north rhine westphalia": "DE-NW",
           "hesse": "DE-HE", "saxony": "DE-SN", "saxony anhalt": "DE-ST", "thuringia": "DE-TH",
           "rhineland palatinate": "DE-RP", "mecklenburg western pomerania": "DE-MV"},
    "ES": {"catalonia": "ES-CT", "andalusia": "ES-AN", "valencian community": "ES-VC",
           "valencia": "ES-VC", "basque country": "ES-PV", "community of madrid": "ES-MD",
           "balearic islands": "ES-IB", "canary islands": "ES-CN", "castile and leon": "ES-CL",
           "castile la mancha": "ES-CM", "navarre": "ES-NC", "region of murcia": "ES-MC"},
    "FR": {"brittany": "FR-BRE", "normandy": "FR-NOR", "corsica": "FR-20R",
           "provence alpes cote d azur": "FR-PAC", "grand est": "FR-GES"},
    "GB": {"wales": "GB-WLS"},
    "IT": {"lombardy": "IT-25", "tuscany": "IT-52", "piedmont": "IT-21", "sicily": "IT-82",
           "sardinia": "IT-88", "apulia": "IT-75", "aosta valley": "IT-23", "latium": "IT-62",
           "trentino south tyrol": "IT-32"},
    "LT": {"vilnius": "LT-VL", "kaunas": "LT-KU", "klaipeda": "LT-KL"},
    "MX": {"mexico city": "MX-CMX", "cdmx": "MX-CMX", "state of mexico": "MX-MEX",
           "coahuila": "MX-COA", "michoacan": "MX-MIC", "veracruz": "MX-VER"},
    "NZ": {"wellington": "NZ-WGN"},
    "NL": {"north holland": "NL-NH", "south holland": "NL-ZH", "north brabant": "NL-NB",
           "friesland": "NL-FR"},
    "US": {"washington dc": "US-DC", "washington d c": "US-DC"},
}  # fmt: skip
_BRACKETS_RE = re.compile(r"\s*[\[(][^\])]*[\])]")
_PLACE_PUNCT_RE = re.compile(r"[.'’`]")
_PLACE_SPACE_RE = re.compile(r"[\s\-–,/]+")
# Words around a subdivision's name that do not name it.
_PLACE_PREFIX_RE = re.compile(
    r"^(?:the |state of |province of |provincia de |provincia di |estado de |estado do |"
    r"county |region of |departement de |canton of |canton de )"
)
_PLACE_SUFFIX_RE = re.compile(
    r" (?:state|province|county|region|prefecture|canton|sheng|shi|zizhiqu|apskritis|sar|"
    r"oblast|voivodeship|lan)$"
)


def _place_key(text: str) -> str:
    text = _PLACE_PUNCT_RE.sub("", ascii_fold(text).lower())
    return _PLACE_SPACE_RE.sub(" ", text).strip()


def _place_keys(name: str) -> set[str]:
    """The keys a subdivision's ISO name is found under."""
    keys = {_place_key(name), _place_key(_BRACKETS_RE.sub("", name))}
    keys |= {_place_key(inner) for inner in re.findall(r"\[([^\]]*)\]", name)}
    keys |= {_place_key(name.split(",")[0])}
    keys |= {_PLACE_SUFFIX_RE.sub("", key) for key in list(keys)}
    if name.endswith("län") or " län " in name:  # Swedish genitive: "Örebro", "Skånes"
        keys |= {key.removesuffix("s") for key in keys}
    return {key for key in keys if key}


@lru_cache(maxsize=256)
def _subdivisions(country: str) -> dict[str, str]:
    """Key -> ISO 3166-2 code for one country; top-level subdivisions win a shared key."""
    found = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    index: dict[str, str] = {}
    for top_level in (True, False):
        for sub in found:
            if (sub.parent_code is None) != top_level:
                continue
            code = str(sub.code)
            for key in (*_place_keys(str(sub.name)), code.split("-", 1)[1].lower()):
                index.setdefault(key, code)
        if top_level:  # the aliases name top-level places: before any lower level's name
            for key, code in _SUBDIVISION_ALIASES.get(country, {}).items():
                index.setdefault(key, code)
    return index


@lru_cache(maxsize=8192)
def state_code(state: str | None, country: str | None) -> str | None:
    """ISO 3166-2 code (``US-CA``, ``CA-BC``) of a state/province name or code within a
    country (a name, alias or code), or None when the country or the place is unknown."""
    if state is None or country is None:
        return None
    alpha_2 = country_code(country)
    if alpha_2 is None:
        return None
    index = _subdivisions(alpha_2)
    if not index:
        return None
    key = _place_key(state)
    if key.startswith(alpha_2.lower() + " "):  # already "US-CA"
        key = key[3:]
    for candidate in (key, _PLACE_PREFIX_RE.sub("", key), _PLACE_SUFFIX_RE.sub("", key)):
        code = index.get(candidate)
        if code is not None:
            return code
    return index.get(_PLACE_SUFFIX_RE.sub("", _PLACE_PREFIX_RE.sub("", key)))
