"""Fleet management: the board as a device of a rollout server (Eclipse hawkBit's DDI API).

The fleet layer asks the server what to do and hands the work to the upgrade
machinery that a hand upload uses (the upload store, the signed package, the
A/B installer and boot guard, the card upgrade job); it installs nothing of
its own, so a rollout can do no more than a service engineer with a laptop.
"""
