"""Error reporting to Sentry (``SENTRY_DSN``), as the original reports unhandled errors."""

from arinova.reporting.sentry import error_reporting, scrub

__all__ = ["error_reporting", "scrub"]
