"""One typed redirect for the views.

``flask.redirect`` is typed as returning werkzeug's base ``Response``; inside an app
context it answers with ``current_app.redirect``, an instance of the app's
``response_class`` (:class:`flask.Response`). Views annotated ``-> flask.Response``
use this function instead, so the type checker sees what Flask really returns."""

from __future__ import annotations

from typing import cast

import flask
from flask import Response


def redirect(location: str, code: int = 302) -> Response:
    """Exactly ``flask.redirect(location, code)``: a :class:`flask.Response` with the
    status ``code`` and ``Location: location``."""
    return cast(Response, flask.redirect(location, code))
