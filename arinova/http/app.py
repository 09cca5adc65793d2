"""The HTTP app: every area's routes on one router, behind the shared pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from blacksheep import Router

from arinova.http import (
    agents,
    auth_routes,
    conversations,
    groups,
    health,
    messages,
    notifications,
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

    def mount(self, router: Router, state: AppState) -> None: ...


# Each area module exposes ``mount(router, state)``.
AREAS: tuple[Area, ...] = (health, sockets_fallback, agents, auth_routes)
AREAS += (conversations, groups, messages, reactions)
AREAS += (uploads,)
AREAS += (push, notifications, sandbox)


def build_http_app(state: AppState, extra_areas: Iterable[Area] = ()) -> HttpApp:
    """The HTTP app with every area's routes (``extra_areas``: e.g. test-only routes)."""
    router = ArinovaRouter()
    for area in (*AREAS, *extra_areas):
        area.mount(router, state)
    app = HttpApp(router=router)
    install_common(app, state)
    return app
