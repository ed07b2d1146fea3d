"""Reports a customer signs and an engineer files: JSON for machines, one HTML page for people.

Two reports: the acceptance report an installer and a customer sign when a
screen is handed over, and the inspection report of a self-test run (the
quarterly inspection a service engineer hands the customer).  Each is kept
as JSON; the HTML is a single self-contained file (inline CSS and SVG, no
scripts, fonts or links) so it can be mailed, archived and opened years
later on an offline laptop, and it prints on A4.  Both share the page frame
and tables (:mod:`.page`, :mod:`.tables`) and the picture of the wall
(:func:`~controller.report.wall.wall_svg`), so an installer and a service
engineer see the same wall the same way; words come from
:mod:`~controller.report.i18n` in English or Chinese.  See ``docs/reports.md``.
"""

from __future__ import annotations

from controller.errors import LedwardenError


class ReportError(LedwardenError, ValueError):
    """A report cannot be rendered: wrong kind or version, or an unknown language."""


# Imported after ReportError, which the submodules import from here.
from controller.report.acceptance import render_acceptance_html, write_acceptance  # noqa: E402
from controller.report.findings import finding_text  # noqa: E402
from controller.report.inspection import render_inspection_html, write_inspection  # noqa: E402
from controller.report.wall import wall_svg  # noqa: E402

__all__ = ["ReportError", "finding_text", "render_acceptance_html", "render_inspection_html", "wall_svg",
           "write_acceptance", "write_inspection"]
