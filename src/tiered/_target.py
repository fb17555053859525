"""``MODULE:ATTR``: where the command line finds the user's runtime.

Like uvicorn's ``module:app``: the module is imported (the current
directory first, as ``python -m`` does) and the attribute is a
``tiered.Runtime``, or a function that returns one (a factory, as
docs/testing.md recommends writing).  A mistake is a :class:`UsageProblem`
(exit status 2) or, when the user's own code raised, :class:`UserCodeFailed`
(exit status 1); never a traceback unless asked for.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: tiered probe, next door, avoids it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._runtime import Runtime

__all__ = ["UsageProblem", "UserCodeFailed", "load_runtime", "print_traceback"]

_FACTORY_HINT = (
    "point at the object made by tiered.Runtime(...), or at a function that returns one"
)


class UsageProblem(Exception):
    """A mistake on the command line: exit status 2."""


class UserCodeFailed(Exception):
    """Importing the user's module, or calling its factory, raised: status 1."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def load_runtime(target: str, *, show_traceback: bool = False) -> Runtime:
    """Import ``MODULE:ATTR`` (like uvicorn's ``module:app``) and return the Runtime.

    ``ATTR`` is a ``tiered.Runtime``, or a function (any callable but a
    class) that takes no arguments and returns one: it is called once.  The
    current directory is searched first, as ``python -m`` does.

    Raises:
        UsageProblem: ``target`` is malformed, names no module or attribute,
            or names something that is not a Runtime nor a factory of one.
        UserCodeFailed: importing the module or calling the factory raised.
    """
    import importlib

    from ._runtime import Runtime

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        msg = f"{target!r} is not MODULE:ATTR; write it like myapp.daemon:runtime"
        raise UsageProblem(msg)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            msg = f"cannot import {module_name!r}: no module named {exc.name!r} (run from the directory that holds it, or install it)"
            raise UsageProblem(msg) from None
        what = f"importing {module_name!r}"
        raise UserCodeFailed(what) from exc
    except Exception as exc:
        if show_traceback:
            print_traceback()
        what = f"importing {module_name!r}"
        raise UserCodeFailed(what) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            msg = f"module {module_name!r} has no attribute {attr!r}"
            raise UsageProblem(msg) from None
    if isinstance(obj, Runtime):
        return obj
    if not callable(obj) or isinstance(obj, type):
        kind = "class" if isinstance(obj, type) else type(obj).__name__
        msg = f"{target} is {_a(kind)}, not a tiered.Runtime; {_FACTORY_HINT}"
        raise UsageProblem(msg)
    made = _call_factory(target, obj, show_traceback=show_traceback)
    if not isinstance(made, Runtime):
        msg = (
            f"{target} returned {_a(type(made).__name__)}, not a tiered.Runtime; "
            "a factory must return the object made by tiered.Runtime(...)"
        )
        raise UsageProblem(msg)
    return made


def _call_factory(
    target: str, factory: Callable[..., object], *, show_traceback: bool
) -> object:
    """Call ``factory()``, unless it plainly is no factory of a Runtime.

    Refused without a call, as a usage mistake: an async function, a function
    that needs arguments, and one whose return annotation names a type that
    is no Runtime (``def main() -> int``: likely the module's entry point,
    which would serve the daemon, or parse ``tiered``'s own arguments).
    """
    import inspect

    if inspect.iscoroutinefunction(factory) or inspect.isasyncgenfunction(factory):
        msg = f"{target} is an async function; point at the object made by tiered.Runtime(...), or at a plain function that returns one"
        raise UsageProblem(msg)
    try:
        signature: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none: just call them
        signature = None
    if signature is not None:
        needed = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if needed:
            msg = f"{target} takes arguments ({', '.join(needed)}); a function that makes the tiered.Runtime is called with none"
            raise UsageProblem(msg)
        declared = _declared_non_runtime(factory, signature.return_annotation)
        if declared is not None:
            msg = f"{target} is a function that returns {declared}, not a tiered.Runtime; {_FACTORY_HINT}"
            raise UsageProblem(msg)
    try:
        return factory()
    except Exception as exc:
        if show_traceback:
            print_traceback()
        what = f"calling {target}"
        raise UserCodeFailed(what) from exc


def _declared_non_runtime(
    factory: Callable[..., object], annotation: Any
) -> str | None:
    """The name of the type ``factory`` declares it returns, when that is no Runtime.

    None when nothing is declared, or a Runtime (a subclass too), or what
    cannot be told apart from one (``Any``, a union, a name that cannot be
    resolved): then the factory is called and what it returns is checked.
    """
    import inspect
    import typing

    from ._runtime import Runtime

    if annotation is inspect.Signature.empty:
        return None
    if isinstance(annotation, str):  # from __future__ import annotations
        annotation = _resolve(factory, annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is typing.NoReturn or annotation is typing.Never:
        return "nothing (it never returns)"
    if not isinstance(annotation, type) or annotation in (object, typing.Any):
        return None  # Any is a class since Python 3.11
    try:
        runtime = issubclass(annotation, Runtime)
    except TypeError:  # list[int] passes for a type, not for a class
        return None
    return None if runtime else annotation.__qualname__


def _resolve(factory: Callable[..., object], annotation: str) -> object:
    """What a string annotation names, if a plain (dotted) name; else the string.

    Looked up in the factory's module, then among the builtins, never
    evaluated: ``"tiered.Runtime"`` and ``"int"`` resolve, ``"Runtime | None"``
    and a name imported only under ``TYPE_CHECKING`` stay strings.
    """
    import builtins
    import inspect

    if annotation == "None":
        return None
    first, *rest = annotation.split(".")
    if not all(part.isidentifier() for part in (first, *rest)):
        return annotation
    # the module of the function under any functools.wraps decorators
    namespace = getattr(inspect.unwrap(factory), "__globals__", {})
    try:
        obj = namespace[first] if first in namespace else getattr(builtins, first)
        for part in rest:
            obj = getattr(obj, part)
    except AttributeError:
        return annotation
    return obj


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: a str, an int."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def print_traceback() -> None:
    """The traceback of the exception being handled, on stderr (``--traceback``)."""
    import traceback

    traceback.print_exc()
