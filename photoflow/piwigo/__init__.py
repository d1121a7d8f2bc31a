"""The Piwigo web-service protocol (`/ws.php`), for the clients that speak it.

Darktable's Piwigo export, digiKam, Shotwell, the Piwigo mobile apps, Piwigo Remote Sync and the PyPI
`piwigo2` client talk to Photoflow as to a Piwigo (../shared/docs/piwigo.md). The package is the
protocol (`protocol`: parameters, the method table and dispatch, urlencoded bodies; `envelopes`: JSON
and XML) apart from the method handlers, grouped by what they handle (`session`, `categories`,
`images`, `tags`); each handler maps its parameters onto one service call and the result onto
Piwigo's shape (`shapes`), with the same visibility rule, import and sessions as every other door.

Nothing here knows HTTP: `photoflow/web/ws.py` turns a request into a `Call` and an `Answer` back
into JSON or XML.
"""

# The handler modules register their methods in `METHODS` as they are imported.
from photoflow.piwigo import categories, images, session, tags
from photoflow.piwigo.envelopes import (
    NamedArray,
    NamedStruct,
    json_failure,
    json_success,
    to_json,
    xml_failure,
    xml_success,
)
from photoflow.piwigo.protocol import (
    ACCESS_DENIED,
    BAD_LOGIN,
    INVALID_METHOD,
    INVALID_PARAM,
    INVALID_TOKEN,
    METHODS,
    MISSING_PARAM,
    NOT_FOUND,
    POST_ONLY,
    SERVER_ERROR,
    STORAGE_FULL,
    Answer,
    Call,
    Method,
    Param,
    Upload,
    WsError,
    changes_state,
    dispatch,
    message,
    pwg_token,
    read_urlencoded,
    utf8,
)
from photoflow.piwigo.session import VERSION

__all__ = [
    "ACCESS_DENIED",
    "BAD_LOGIN",
    "INVALID_METHOD",
    "INVALID_PARAM",
    "INVALID_TOKEN",
    "METHODS",
    "MISSING_PARAM",
    "NOT_FOUND",
    "POST_ONLY",
    "SERVER_ERROR",
    "STORAGE_FULL",
    "VERSION",
    "Answer",
    "Call",
    "Method",
    "NamedArray",
    "NamedStruct",
    "Param",
    "Upload",
    "WsError",
    "categories",
    "changes_state",
    "dispatch",
    "images",
    "json_failure",
    "json_success",
    "message",
    "pwg_token",
    "read_urlencoded",
    "session",
    "tags",
    "to_json",
    "utf8",
    "xml_failure",
    "xml_success",
]
