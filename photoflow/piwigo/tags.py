"""ws.php methods on tags (Photoflow's keywords)."""

from __future__ import annotations

from typing import Any

from photoflow import services
from photoflow.piwigo.envelopes import NamedArray
from photoflow.piwigo.protocol import Call, Param, method
from photoflow.piwigo.shapes import url_name


@method("pwg.tags.getList", Param("sort_by_counter", "bool", optional=True, default=False))
def tags_list(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Every keyword on a photo the caller may see, with how many such photos carry it."""
    counts = services.tag_counts(call.viewer)
    if p["sort_by_counter"]:
        counts.sort(key=lambda t: -t.count)
    rows = [{"id": t.id, "name": t.name, "url_name": url_name(t.name), "counter": t.count} for t in counts]
    return {"tags": NamedArray(rows, "tag", ("id", "counter", "url_name"))}


@method("pwg.tags.add", Param("name"), post_only=True)
def tags_add(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A new keyword (or the one of that name)."""
    return {"info": "Tag added", "id": services.create_tag(p["name"])}
