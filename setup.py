"""Only what pyproject.toml cannot say: the cffi extension (metadata lives there)."""

from setuptools import setup

setup(cffi_modules=["controller/fastpath/_build.py:ffi"])
