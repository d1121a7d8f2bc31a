"""URL shapes that more than one place writes, defined once.

A derivative's URL names the photo and the first hex digits of the hash of the file it is shown
from, so a new picture for the photo is a new URL and a public one can be cached for good:
`/d/<size>/<photo id>-<hash prefix>.jpg`. The pages, the feeds and ws.php build it with `derivative`;
the web route is `DERIVATIVE_ROUTE`; the grid pages hand `DERIVATIVE` to grid.js, which fills it in.
"""

from __future__ import annotations

HASH_PREFIX = 16  # hex digits of the shown file's SHA-256
# {size}: a name of imaging.SIZES; {id}: the photo's id; {sha}: the hash prefix.
DERIVATIVE = "/d/{size}/{id}-{sha}.jpg"
DERIVATIVE_ROUTE = (
    DERIVATIVE.replace("{size}", "<size>")
    .replace("{id}", "<photo_id:int>")
    .replace("{sha}", f"<sha:re:[0-9a-f]{{{HASH_PREFIX}}}>")
)


def derivative(photo_id: int, sha256: str, size: str | int) -> str:
    """The path (under the site's prefix, or a share link's) of a photo's derivative of this size."""
    return DERIVATIVE.format(size=size, id=photo_id, sha=sha256[:HASH_PREFIX])
