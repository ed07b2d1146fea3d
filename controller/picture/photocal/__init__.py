"""Uniformity calibration from photographs of the wall (issue 19).

:mod:`.photos` holds the patterns the wall shows, the photo files and the
camera's profile; :mod:`.locate` finds the LED grid in the registration
photo; :mod:`.measure` turns the full-field photos into each LED's primaries
in XYZ; :mod:`.solve` chooses a target every LED reaches and computes each
LED's 3x3 coefficients (spec ``docs/spec/correction.md`` 2.2), for the whole
wall or to match one replaced module to its neighbours; :mod:`.folder` runs
all of it on a folder of photos (whole screen, cabinet by cabinet, one
module, or the verification round) and :mod:`.record` makes the calibration
report's record.  The image work is OpenCV's (``opencv-python-headless``):
homography fitting, warping and connected components in one maintained
library; see ``docs/photocal.md``.
"""
