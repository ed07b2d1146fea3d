"""Real video in and out (issue 16): video files, DDP in and out, Colorlight 5A-75 out.

Sources here run on a thread of their own and hand the frame loop the newest
frame through a small queue (:mod:`controller.video.threaded`), so a slow
decoder or a quiet network never stalls the loop and the last good picture
stays up.  Sinks take the pipeline's :class:`~controller.fastpath.common.ScanResult`
and turn it back into the screen's picture in 8 bits
(:mod:`controller.video.picture`), because DDP receivers and Colorlight cards
take a picture, not our cards' scan buffers.  :mod:`controller.video.specs`
maps ``--source``/``--sink`` strings to them.  See ``docs/video-io.md``.
"""
