"""The HTTP app: every area's routes on one router, behind the shared pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from arinova.http import (
    agents,
    auth_routes,
    conversations,
    groups,
    health,
    messages,
    notifications,
    openapi,
    push,
    reactions,
    sandbox,
    sockets_fallback,
    uploads,
)
from arinova.http.common import HttpApp, install_common
from arinova.http.router import ArinovaRouter
from arinova.state import AppState


class Area(Protocol):
    """A module (or object) that registers its routes."""

    def mount(self, router: ArinovaRouter, state: AppState) -> None: ...


# Each area module exposes ``mount(router, state)``.
AREAS: tuple[Area, ...] = (health, sockets_fallback, agents, auth_routes)
AREAS += (conversations, groups, messages, reactions)
AREAS += (uploads,)
AREAS += (push, notifications, sandbox)
AREAS += (openapi,)


def build_http_app(state: AppState, extra_areas: Iterable[Area] = ()) -> HttpApp:
    """The HTTP app with every area's routes (``extra_areas``: e.g. test-only routes)."""
    router = ArinovaRouter()
    for area in (*AREAS, *extra_areas):
        area.mount(router, state)
    app = HttpApp(router=router)
    install_common(app, state)
    return app


def api_document(state: AppState) -> bytes:
    """The bytes of ``GET /api/openapi.json`` of a server with this state's settings (only
    the settings are read: ``arinova.compose.describing_state`` gives such a state)."""
    router = ArinovaRouter()
    for area in AREAS:
        area.mount(router, state)
    return openapi.render(openapi.document(router.registered))
