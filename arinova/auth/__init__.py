"""Authentication compatible with Better Auth 1.4.18: users, sessions, cookies, OAuth.

``state.auth`` is the process's ``Authenticator``; REST routes call
``await state.auth.require_user(request)`` and the socket upgrade
``await state.auth.user_from_cookie_header(header)``.
"""

from arinova.auth.authenticator import Authenticator, CurrentUser

__all__ = ["Authenticator", "CurrentUser"]
