"""Text people type, cleaned once for every door: the limits and the rules."""

from __future__ import annotations

from photoflow.errors import Invalid

MAX_USER_NAME = 64
MAX_ALBUM_TITLE = 200
MAX_PHOTO_TITLE = 500
MAX_AUTHOR = 200
MAX_TAG = 200
MAX_DESCRIPTION = 5000


def clean_text(text: str | None, limit: int, what: str) -> str:
    """Printable text (newlines and tabs kept), stripped; Invalid past `limit` characters."""
    text = "".join(ch for ch in (text or "") if ch.isprintable() or ch in "\n\t").strip()
    if len(text) > limit:
        raise Invalid(f"the {what} is longer than {limit} characters")
    return text


def clean_line(text: str | None) -> str:
    """One line of text: control characters and bidirectional overrides dropped, spaces folded.

    They are not text anyone typed, and XML (ws.php) cannot carry some of them.
    """
    return " ".join("".join(ch for ch in (text or "") if ch.isprintable() or ch.isspace()).split())
