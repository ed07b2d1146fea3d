"""The boot guard's old name: ``python -m controller.upgrade.bootguard`` still runs the guard.

The guard moved to :mod:`controller.upgrade.bundles.bootguard` when the
upgrade package was split in two (issue 13).  Its old name is used where no
edit of this repository reaches:

- the systemd unit of a board deployed before the split: ``ledwarden.service``
  is copied into ``/etc/systemd/system`` once, by hand, and an operator's
  drop-in may repeat its ``ExecStart``; after the base installation is
  renewed the board must still boot;
- the install smoke test of every release before the split, which imports
  ``controller.upgrade.bootguard`` from the new slot before switching to it:
  without this name such a board would refuse every later bundle as one that
  "does not start".

So this module stays while such boards may exist.  It only forwards: the
guard's code, options and messages are the new module's.
"""

from __future__ import annotations

import sys

from controller.upgrade.bundles.bootguard import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
