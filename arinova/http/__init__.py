"""The REST layer: a BlackSheep application whose areas each own their routes."""

from __future__ import annotations

from blacksheep import Application, Router

from arinova.http import health
from arinova.http.common import install_common
from arinova.state import AppState

# Each area module exposes ``mount(router, state)``.
AREAS = (health,)


def build_http_app(state: AppState) -> Application:
    router = Router()
    for area in AREAS:
        area.mount(router, state)
    app = Application(router=router)
    install_common(app, state)
    return app
