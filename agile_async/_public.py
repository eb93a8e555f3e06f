"""How a public module claims the names it exports: the one rule every façade calls.

A class or function is defined in a private module (``agile_async._counting``) and exported by
a public one (``agile_async.segments``). Its ``__module__`` is rewritten to the public one, so
reprs, documentation, pickles and error tracebacks show the import path that is promised to
stay, not one that may move. Each façade ends with ``claim_public_names(__name__)``.

Only what the package itself defines in a private module is claimed:

- constants (``MAX_PARTS``, ``BASE_URLS``) have no ``__module__`` of their own;
- type aliases (``ReportCallback = Callable[...]``, a ``Union``) are not classes, although on
  Python 3.10 a generic alias passes ``isinstance(alias, type)`` and answers ``__module__``
  with its origin's (``collections.abc``), which cannot be set;
- an object a public module already claimed keeps that claim, so exporting it again from a
  second façade does not move it.
"""

from __future__ import annotations

import sys
import types

import attrs

__all__ = ["claim_public_names", "is_claimable"]

_PACKAGE = __name__.partition(".")[0]


def is_claimable(obj: object) -> bool:
    """A class or function defined in a private module of this package (``_`` in the path)."""
    if isinstance(obj, types.GenericAlias):  # checked first: on 3.10 it passes as a type
        return False
    if not isinstance(obj, (type, types.FunctionType)):
        return False
    parts = obj.__module__.split(".")
    return parts[0] == _PACKAGE and any(part.startswith("_") for part in parts[1:])


def claim_public_names(module_name: str) -> None:
    """Make every claimable object in the module's ``__all__`` say it lives there.

    An attrs class's string annotations are resolved first, while its defining module's names
    are still the ones they are looked up in (afterwards they would be looked up in the public
    module, which does not import every name an annotation uses); the public module's own
    names resolve what the defining module imports only for type checking, to avoid a cycle.
    """
    module = sys.modules[module_name]
    for name in module.__all__:
        obj = getattr(module, name)
        if not is_claimable(obj):
            continue
        if isinstance(obj, type) and attrs.has(obj):
            attrs.resolve_types(obj, localns=vars(module))
        obj.__module__ = module_name
