"""The routes an app declares, read back from the app: what ``Allow`` lists on a 405
and the closed set of route labels ``/metrics`` may use.

Read from ``app.routes`` (FastAPI's included routers opened), never from a second list,
so a new route is in both the moment it is added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles


class Declared:
    """One route as the app declares it: its path template, the regex that matches it,
    and the methods it answers (the static files' mount answers GET and HEAD)."""

    __slots__ = ("methods", "path", "regex")

    def __init__(self, path: str, regex: re.Pattern[str], methods: frozenset[str]) -> None:
        self.path, self.regex, self.methods = path, regex, methods


def declared_routes(routes: Iterable[BaseRoute]) -> list[Declared]:
    """Every route under ``routes`` (an app's ``routes``, included routers opened).

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        >>> _ = app.get("/healthz")(lambda: "ok")
        >>> [(d.path, sorted(d.methods)) for d in declared_routes(app.routes)]
        [('/healthz', ['GET'])]
    """
    out: list[Declared] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            out += declared_routes(included.routes)
        elif isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                out.append(Declared(route.path + "/{path}", route.path_regex,
                                    frozenset({"GET", "HEAD"})))
            else:
                out += declared_routes(route.routes)
        else:
            methods = getattr(route, "methods", None)
            regex = getattr(route, "path_regex", None)
            if methods and regex is not None:
                out.append(Declared(str(getattr(route, "path", "")), regex, frozenset(methods)))
    return out


def allowed_methods(routes: Iterable[Declared], path: str) -> list[str]:
    """The methods the routes that match ``path`` answer, together (for ``Allow``).

    Example:
        >>> d = [Declared("/v1/tokens", re.compile("^/v1/tokens$"), frozenset({"GET"})),
        ...      Declared("/v1/tokens", re.compile("^/v1/tokens$"), frozenset({"POST"}))]
        >>> allowed_methods(d, "/v1/tokens")
        ['GET', 'POST']
    """
    return sorted({m for d in routes if d.regex.match(path) for m in d.methods})
