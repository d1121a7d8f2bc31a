"""Piwigo's envelopes: `stat: ok` or `stat: fail`, in JSON or in the XML of its rest encoder.

Handlers answer with plain values and two shapes of Piwigo's XML (named arrays and structs, whose
items or some keys become elements and attributes); JSON sees them as lists and dicts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from photoflow.piwigo.protocol import WsError

# -- XML shapes: Piwigo's named arrays and structs (include/ws_core.inc.php) -------------------------


@dataclass
class NamedArray:
    """A list whose items are <item_name> elements in XML (some keys as attributes); a list in JSON."""

    items: list[Any]
    item_name: str
    attributes: tuple[str, ...] = ()


@dataclass
class NamedStruct:
    """A dict written as one <name> element in XML (some keys as attributes); a dict in JSON."""

    content: dict[str, Any]
    name: str
    attributes: tuple[str, ...] = ()


# -- envelopes -----------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """Plain JSON values: named arrays and structs become lists and dicts."""
    if isinstance(value, NamedArray):
        return [to_json(v) for v in value.items]
    if isinstance(value, NamedStruct):
        return {k: to_json(v) for k, v in value.content.items()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    # json.dumps asks only for what it cannot write itself: no second walk over a page of 500 images.
    if isinstance(value, NamedArray):
        return value.items
    if isinstance(value, NamedStruct):
        return value.content
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_success(result: Any) -> str:
    """`{"stat":"ok","result":...}`."""
    envelope = {"stat": "ok", "result": result}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), default=_plain)


def json_failure(error: WsError) -> str:
    """`{"stat":"fail","err":...,"message":...}`."""
    return json.dumps({"stat": "fail", "err": error.code, "message": error.message}, ensure_ascii=False)


def xml_success(result: Any) -> str:
    """Piwigo's rest encoder: `<rsp stat="ok">` and the result, nulls left out, booleans 1/0."""
    out: list[str] = []
    _xml(result, out, ())
    body = "".join(out)
    if not isinstance(result, dict | list | NamedArray | NamedStruct):
        # A plain value (getVersion, login's 1) stands alone: digiKam reads the version with
        # `.?(\d)\.(\d).*` over the whole text, which a leading newline before "14.5.0" defeats.
        return f'<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="ok">{body}</rsp>'
    return '<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="ok">\n' + body + "\n</rsp>"


def xml_failure(error: WsError) -> str:
    """`<rsp stat="fail"><err code=".." msg=".."/></rsp>`."""
    err = f'<err code="{error.code}" msg={quoteattr(_scalar(error.message))} />'
    return f'<?xml version="1.0"?>\n<rsp stat="fail">\n\t{err}\n</rsp>'


# Characters XML 1.0 cannot carry, even escaped: a stored album title with a control character made
# the whole answer unparseable.
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else _NOT_XML.sub("", str(value))


def _xml(value: Any, out: list[str], attributes: tuple[str, ...]) -> None:
    if isinstance(value, NamedArray):
        for item in value.items:
            _element(value.item_name, item, out, value.attributes)
    elif isinstance(value, NamedStruct):
        _element(value.name, value.content, out, value.attributes)
    elif isinstance(value, dict):
        for key, item in value.items():
            if item is None or key in attributes:
                continue
            _element(key, item, out, ())
    elif isinstance(value, list | tuple):
        for item in value:
            _element("item", item, out, ())
    else:
        out.append(escape(_scalar(value)))


def _element(name: str, value: Any, out: list[str], attributes: tuple[str, ...]) -> None:
    # Some names are the client's own words (pwg.images.exist answers by file name): anything but a
    # name's characters becomes "_", or `filename_list=a<b` wrote markup into the answer.
    name = _NOT_NAME.sub("_", name) or "_"
    if not (name[:1].isalpha() or name[:1] == "_"):
        name = "_" + name  # XML names cannot start with a digit: Piwigo writes <_2small>, <_3f0e...>
    attrs = ""
    if isinstance(value, dict) and attributes:
        attrs = "".join(
            f" {key}={quoteattr(_scalar(value[key]))}" for key in attributes if value.get(key) is not None
        )
    inner: list[str] = []
    _xml(value, inner, attributes)
    body = "".join(inner)
    out.append(f"<{name}{attrs}>{body}</{name}>" if body else f"<{name}{attrs} />")
