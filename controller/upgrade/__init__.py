"""Signed updates: controller software bundles and receiving-card firmware packages.

Two subsystems share this package's top level:

- :mod:`controller.upgrade.bundles` — the controller's own software: A/B
  slots, the install transaction, the boot guard and the health verdict;
- :mod:`controller.upgrade.cards` — receiving-card firmware, streamed over
  the bus to every card, canary first.

Both travel in one container format (:mod:`controller.upgrade.package`),
signed with Ed25519 keys (:mod:`controller.upgrade.signing`), and arrive as
resumable uploads (:mod:`controller.upgrade.uploads`); the board holds only
public keys.  Every durable file write goes through counted steps
(:mod:`controller.upgrade.steps`) so a harness can cut power after any of
them; the live picture's store uses them too.  Those four are all the two
share, so neither imports the other.
"""
