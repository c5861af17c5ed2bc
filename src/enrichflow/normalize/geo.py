"""Country normalization to ISO 3166-1 alpha-2 codes.

`pycountry` knows official names, common names and the alpha-2/alpha-3 codes; on top of it
we keep aliases that lead lists use but ISO does not (UK, England, USA, Holland, UAE, native
names such as Deutschland or España). Lookups are cached because lead files repeat the same
handful of countries on every row.
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
