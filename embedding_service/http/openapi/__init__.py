"""The OpenAPI 3.1 description of every documented route, generated from the app's URL map.

Each route declares its operation where it is defined (api.routing: request models from
schemas.py, response models from responses.py, summary, tag, error statuses and error style);
:func:`build_spec` walks `app.url_map`, so a new route appears without being listed a second time.

Served at /openapi.json; /docs renders it with Swagger UI from the PyPI package
`swagger-ui-bundle`'s local files (no CDN). What depends on configuration (served model names,
dimensions, vocabulary, prompt names, whether an image model is served, the public paths) is
filled in per request from the running service, so that a request the description calls valid is
accepted and one it calls invalid is refused with a 4xx. The request limits answered with 413
(MAX_INPUT_CHARS and the others of LIMIT_TEXT) are stated as each operation's `x-limits`, not as
schema bounds. What no JSON Schema can say is in the descriptions: an image string must decode to
an image, a text with `truncate: false` must fit the model's window (422), and with `rank_fields`
a document object must hold one of the named fields.

Three modules: `deployment.py` (what the running deployment allows: served models, budgets),
`tighten.py` (filling those into each request schema) and `document.py` (walking the URL map
into the document).
"""

from .document import build_spec, documented_operations, documented_paths, openapi_path
from .deployment import LIMIT_TEXT, Deployment, ServedModel

__all__ = ["LIMIT_TEXT", "Deployment", "ServedModel", "build_spec", "documented_operations", "documented_paths", "openapi_path"]
