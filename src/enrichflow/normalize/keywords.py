"""Keywords cells split into tags without cutting LinkedIn's industry names apart.

Apollo's Keywords column joins tags with commas, and its tags include LinkedIn industry names
and NAICS industry titles that contain commas themselves (``health, wellness & fitness``,
``medical, dental, and hospital equipment and supplies merchant wholesalers``). Those names
(``linkedin_industries.txt``, ``naics_industries.txt``) are kept whole; every other comma,
semicolon, pipe or line break separates two tags.
"""

from __future__ import annotations

import re
from importlib import resources

from enrichflow.normalize._text import repair_mojibake
from enrichflow.normalize.numbers import parse_list, unique_items

_AND_RE = re.compile(r"\s*&\s*|\s+and\s+")
_SPACE_RE = re.compile(r"\s+")
_OTHER_SEPARATORS_RE = re.compile(r"[;\n|]")
INDUSTRY_FILES = ("linkedin_industries.txt", "naics_industries.txt")


def _tag_key(text: str) -> str:
    """A tag compared without case, spacing, or the difference between "&" and "and"."""
    return _AND_RE.sub(" & ", _SPACE_RE.sub(" ", text.strip().lower()))


def _load_comma_tags() -> tuple[frozenset[str], frozenset[str], int]:
    """(keys of the names with commas, keys of their first parts, most parts in one name)."""
    files = resources.files(__package__)
    text = "\n".join(files.joinpath(name).read_text("utf-8") for name in INDUSTRY_FILES)
    names = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    with_commas = [name for name in names if "," in name]
    keys = frozenset(",".join(_tag_key(part) for part in n.split(",")) for n in with_commas)
    firsts = frozenset(_tag_key(name.split(",")[0]) for name in with_commas)
    return keys, firsts, max(name.count(",") + 1 for name in with_commas)


_COMMA_TAGS, _FIRST_PARTS, _MOST_PARTS = _load_comma_tags()


def parse_keywords(raw: str | None) -> list[str]:
    """Tags of a Keywords cell, trimmed and de-duplicated like `parse_list`, with LinkedIn
    industry names that contain commas kept as one tag."""
    if raw is None:
        return []
    if "," not in raw:
        return parse_list(raw)
    if not raw.isascii():
        raw = repair_mojibake(raw)
    tags: list[str] = []
    for chunk in _OTHER_SEPARATORS_RE.split(raw):
        parts = chunk.split(",")
        keys = [_tag_key(part) for part in parts]
        index = 0
        while index < len(parts):
            taken = 1
            if keys[index] in _FIRST_PARTS:
                for size in range(min(_MOST_PARTS, len(parts) - index), 1, -1):
                    if ",".join(keys[index : index + size]) in _COMMA_TAGS:
                        taken = size
                        break
            tags.append(",".join(parts[index : index + taken]))
            index += taken
    return unique_items(tags)
