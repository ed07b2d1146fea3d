"""Signed updates: controller software bundles and receiving-card firmware packages.

Both travel in one container format (:mod:`controller.upgrade.package`), signed
with Ed25519 keys (:mod:`controller.upgrade.signing`); the board holds only
public keys.
"""
