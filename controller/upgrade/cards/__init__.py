"""Card firmware: a signed image streamed to every receiving card over the bus, canary first.

:mod:`.firmware` opens and checks the package; :mod:`.flash` streams it and
repairs what a card missed; :mod:`.commit` commits, boots and checks the
cards, knowing of the flasher only the narrow ``FlashRun`` protocol, so
``flash`` imports ``commit`` and never the other way round; :mod:`.run` holds
the card states and the run's report both share; :mod:`.job` runs it all as a
service job.

Kept apart from controller bundles (:mod:`controller.upgrade.bundles`),
which share only the signed container and the uploads with it.
"""
