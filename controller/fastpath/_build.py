"""cffi build script: the C declarations and how the kernel is compiled.

Out-of-line API mode: ``setup.py`` names ``ffi`` here in ``cffi_modules``, so
``pip install .`` and ``pip install -e .`` compile ``controller.fastpath._lw``
(for an editable install, in place beside this file).  While working on the
C, ``python setup.py build_ext --inplace`` rebuilds it in place.

Flags: ``-O3`` for the vectoriser and nothing tied to the build machine (no
``-march=native``): the portable kernel carries its own AVX2/AVX-512 clones
chosen at load time, and the AVX-512 kernel is chosen at run time, so one
wheel runs on every CPU of its architecture.  The flags are compiled into
the module (``lw_build_info``) so ``ledwarden bench`` can say what it ran.
"""

from __future__ import annotations

import os
import re
import sysconfig

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("lw.c", "lw_avx512.c", "lw_encode.c")
EXTRA_COMPILE_ARGS = ["-O3", "-std=gnu11", "-pthread", "-fvisibility=hidden"]


def _cdef() -> str:
    """The declarations between the cdef markers of lw.h: one source for C and cffi."""
    with open(os.path.join(HERE, "lw.h"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"/\* cdef-begin \*/(.*)/\* cdef-end \*/", text, re.S)
    if match is None:
        raise RuntimeError("lw.h has lost its cdef markers")
    return match.group(1)


def _relative(name: str) -> str:
    """Source paths relative to the working directory, as setuptools prefers."""
    return os.path.relpath(os.path.join(HERE, name))


def _flags_string() -> str:
    base = sysconfig.get_config_var("CFLAGS") or ""
    return " ".join([*base.split(), *EXTRA_COMPILE_ARGS]).replace('"', "'")


ffi = FFI()
ffi.cdef(_cdef())
ffi.set_source(
    "controller.fastpath._lw",
    '#include "lw.h"',
    sources=[_relative(s) for s in SOURCES],
    include_dirs=[_relative(".")],
    define_macros=[("LW_CFLAGS", f'"{_flags_string()}"')],
    extra_compile_args=EXTRA_COMPILE_ARGS,
    extra_link_args=["-pthread"],
)
