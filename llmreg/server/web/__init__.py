"""Web pages for people, served by ``llmreg serve`` at ``/`` (the API stays under ``/v1``).

Server-rendered HTML (Jinja2, autoescaped everywhere) over the same service calls as the
JSON routes; no JavaScript is needed to read or act. :func:`install` adds the pages, the
actions and the stylesheet to an app:

- :mod:`~llmreg.server.web.render`: the template environment and the security headers;
- :mod:`~llmreg.server.web.auth`: who is looking (session cookie or open reads) and CSRF;
- :mod:`~llmreg.server.web.pages`: the board, name, version, diff and audit pages;
- :mod:`~llmreg.server.web.actions`: sign-in, sign-out, approve, promote, rollback;
- :mod:`~llmreg.server.web.sidebyside`: prompts side by side for the diff page.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    """Mount the web pages and their static files on ``app`` (after the API routes).

    Example (``create_app`` calls it):
        >>> app = FastAPI()
        >>> install(app)
        >>> from fastapi.testclient import TestClient
        >>> TestClient(app).get("/static/style.css").status_code
        200
    """
    from llmreg.server.web import actions, pages

    app.mount("/static", StaticFiles(packages=[("llmreg.server.web", "static")]),
              name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
