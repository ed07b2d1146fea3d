"""Controller bundles: the board's own software, installed into an A/B slot and judged at boot.

A bundle (:mod:`.bundle`) is the project and its dependencies as wheels in a
signed package; the installer (:mod:`.installer`) builds the inactive slot
(:mod:`.slots`) through counted file-system steps (:mod:`.steps`) and puts it
on trial; the boot guard (:mod:`.bootguard`) counts the trial's starts and
rolls back a version that does not confirm its health (:mod:`.confirm`) in
time; :mod:`.events` is the journal of all that, and :mod:`.boardcli` the
board's ``ledwarden controller boot|install|slots``.  Kept apart from card
firmware (:mod:`controller.upgrade.cards`), which shares only the signed
container with it.
"""
