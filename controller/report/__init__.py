"""Reports a customer signs and an engineer files: JSON for machines, one HTML page for people.

The HTML is a single self-contained file (inline CSS and SVG, no scripts,
fonts or links) so it can be mailed, archived and opened years later on an
offline laptop, and it prints on A4.  The picture of the wall
(:func:`~controller.report.wall.wall_svg`) is shared by the acceptance report
and the quarterly self-test report; words come from
:mod:`~controller.report.i18n` in English or Chinese.  See ``docs/reports.md``.
"""

from __future__ import annotations

from controller.errors import LedwardenError


class ReportError(LedwardenError, ValueError):
    """A report cannot be rendered: wrong kind or version, or an unknown language."""


# Imported after ReportError, which the submodules import from here.
from controller.report.acceptance import render_acceptance_html, write_acceptance  # noqa: E402
from controller.report.wall import wall_svg  # noqa: E402

__all__ = ["ReportError", "render_acceptance_html", "wall_svg", "write_acceptance"]
