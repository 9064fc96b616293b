"""Events whose handlers take their inputs by name and return their outputs by name.

Gradio passes an event's input values by position and takes ``{component: value}`` dicts back. :func:`wire`
lets a handler be written with named parameters and return ``{name: value}`` for just the outputs it changes
(testable without building the app); the names are written once, beside the components, where the event is
wired. The inputs' order (an API endpoint's parameters) is the order of the ``inputs`` mapping.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr


def wire(handler: Callable, inputs: Mapping[str, gr.components.Component],
         outputs: Mapping[str, gr.components.Component]) -> dict[str, Any]:
    """``fn``, ``inputs`` and ``outputs`` of an event (keyword arguments of ``.click`` and the like).

    ``handler`` takes the inputs by name and returns (or yields) ``{output name: value}``.
    """
    names, targets = tuple(inputs), dict(outputs)

    def by_component(shown: Mapping[str, Any]) -> dict:
        return {targets[name]: value for name, value in shown.items()}

    if inspect.isgeneratorfunction(handler):
        def fn(*values) -> Iterator[dict]:
            for shown in handler(**dict(zip(names, values, strict=True))):
                yield by_component(shown)
    else:
        def fn(*values) -> dict:
            return by_component(handler(**dict(zip(names, values, strict=True))))
    fn.__name__ = getattr(handler, "__name__", getattr(getattr(handler, "func", None), "__name__", "handler"))
    # Gradio names an endpoint's parameters after the function's: the inputs' names.
    fn.__signature__ = inspect.Signature([inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                          for name in names])
    return {"fn": fn, "inputs": list(inputs.values()), "outputs": list(targets.values())}


def validator(check: Callable[..., Mapping[str, str]], inputs: Mapping[str, gr.components.Component]) -> Callable:
    """A Gradio ``validator`` from ``check(**inputs) -> {input name: message}`` (the wrong fields only)."""
    names = tuple(inputs)

    def fn(*values) -> list[dict]:
        problems = check(**dict(zip(names, values, strict=True)))
        return [gr.validate(name not in problems, problems.get(name, "")) for name in names]
    return fn
