"""Behaviour every route shares (contract rest.md §1): placeholder, filled in below."""

from __future__ import annotations

from blacksheep import Application

from arinova.state import AppState


def install_common(app: Application, state: AppState) -> None:
    return None
