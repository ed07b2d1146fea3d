"""The picture the wall shows: correction settings, per-cabinet calibration, live changes.

The fast path (:mod:`controller.fastpath`) computes a frame from a curve, gains and a
calibration array; this package decides which ones.  :mod:`.settings` reads the screen
file's ``[correction]`` table, :mod:`.calibration` reads and checks per-cabinet
calibration files (``.npz`` or CSV), :mod:`.store` keeps what was changed at run time in
power-cut-safe files under the state directory, and :mod:`.live` builds the pipeline from
all of it and swaps it into the running frame loop between two frames.
"""
