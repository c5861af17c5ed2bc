"""What a file that is not CSV is, from its first bytes, so an upload of a PDF, a workbook or a
saved web page is answered with what it is rather than with the byte the decoder stumbled on."""

from __future__ import annotations

__all__ = ["non_csv_kind"]

# (leading bytes, what the file is); the first match wins, so longer prefixes come first.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (XLS) or another Office file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"{\\rtf", "an RTF document"),
)
ZIP = b"PK\x03\x04"
# Entries whose name in a ZIP's first local header (or anywhere in its head) gives it away.
ZIP_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"xl/", "an Excel workbook (XLSX)"),
    (b"word/", "a Word document (DOCX)"),
    (b"ppt/", "a PowerPoint presentation (PPTX)"),
    (b"content.xml", "an OpenDocument file"),
)
# Text that is markup, not rows: a login page saved in place of an export is a common one.
MARKUP: tuple[tuple[bytes, str], ...] = (
    (b"<!doctype html", "a web page (HTML)"),
    (b"<html", "a web page (HTML)"),
    (b"<?xml", "an XML file"),
)


def non_csv_kind(head: bytes) -> str | None:
    """What the file starting with ``head`` is (``"a PDF document"``), or None when its first
    bytes match no known format that is not CSV."""
    for prefix, kind in SIGNATURES:
        if head.startswith(prefix):
            return kind
    if head.startswith(ZIP):
        for marker, kind in ZIP_KINDS:
            if marker in head:
                return kind
        return "a ZIP archive"
    start = head[:64].lstrip().lower()
    for prefix, kind in MARKUP:
        if start.startswith(prefix):
            return kind
    return None
