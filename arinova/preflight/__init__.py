"""``arinova check``: the settings and every service they name, checked before a start."""

from arinova.preflight.checks import Outcome, run_checks

__all__ = ["Outcome", "run_checks"]
