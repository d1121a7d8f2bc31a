"""What the server holds does not grow with the requests it answers (bench/soak.py measures RSS; here the
Python objects, which tell a leak from the allocator's retention).

Pages are rendered through bottle's template(), which caches each compiled template under
(id(lookup list), name): a lookup list made anew at each call compiled the template again on every page
and kept every copy in bottle.TEMPLATES, about 12 kB a page (the soak's RSS grew by 45-200 MB in minutes).
"""

from __future__ import annotations

import gc
import weakref

import bottle
import pytest

from photoflow.library import Library
from photoflow.models import Photo
from tests.conftest import Web

pytestmark = pytest.mark.serial  # counts every object of the process

ROUNDS = 30


def _objects() -> tuple[int, int, int]:
    """Compiled templates cached by bottle, SimpleTemplate objects alive, and every tracked object but weak
    references (a few hundred come and go with the connections, whatever the number of requests)."""
    gc.collect()
    objects = [o for o in gc.get_objects() if not isinstance(o, weakref.ReferenceType)]
    return len(bottle.TEMPLATES), sum(isinstance(o, bottle.SimpleTemplate) for o in objects), len(objects)


def test_pages_do_not_keep_a_template_or_objects_per_request(stocked: Library, web: Web) -> None:
    photo = Photo.select().first()
    paths = ["/", f"/photo/{photo.id}", "/login", "/no/such/page"]

    def browse() -> None:
        for path in paths:
            answer = web.get(path)
            assert answer.status_code in (200, 404), (path, answer.status_code)
            assert "text/html" in answer.headers["Content-Type"], path

    # Warm up: every request thread opens its database connection and fills its statement cache.
    for _ in range(ROUNDS):
        browse()
    templates, simple, total = _objects()
    for _ in range(ROUNDS):
        browse()
    templates_after, simple_after, total_after = _objects()
    requests = ROUNDS * len(paths)
    assert templates_after == templates, f"bottle.TEMPLATES grew by {templates_after - templates}"
    assert simple_after == simple, f"{simple_after - simple} more SimpleTemplate after {requests} pages"
    # Room for what varies (a connection's buffers, a statement cached late), not one object a request.
    assert total_after - total < requests, f"{total_after - total} more objects after {requests} pages"
