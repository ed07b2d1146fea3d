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

# ReportError lives with the project's other errors, so the submodules never import this package.
from controller.errors import ReportError
from controller.report.acceptance import render_acceptance_html, write_acceptance
from controller.report.findings import finding_text
from controller.report.inspection import render_inspection_html, write_inspection
from controller.report.wall import wall_svg

__all__ = ["ReportError", "finding_text", "render_acceptance_html", "render_inspection_html", "wall_svg",
           "write_acceptance", "write_inspection"]
