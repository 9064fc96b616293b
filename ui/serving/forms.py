"""Events whose handlers take their inputs by name and return their outputs by name.

Gradio passes an event's input values by position and takes ``{component: value}`` dicts back. :func:`wire`
lets a handler be written with named parameters and return ``{name: value}`` for just the outputs it changes
(testable without building the app); the names are written once, beside the components, where the event is
wired. The inputs' order (an API endpoint's parameters) is the order of the ``inputs`` mapping.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr

from ui.serving.errors import as_text, clean_text, shorten


def wire(handler: Callable, inputs: Mapping[str, gr.components.Component],
         outputs: Mapping[str, gr.components.Component]) -> dict[str, Any]:
    """``fn``, ``inputs`` and ``outputs`` of an event (keyword arguments of ``.click`` and the like).

    ``handler`` takes the inputs by name and returns (or yields) ``{output name: value}`` for the outputs it
    changes; the others stay as they are (``{}`` or None: nothing changes). A ``progress=gr.Progress()``
    parameter is given gradio's progress bar, a ``request`` parameter gradio's request (who is calling).
    """
    names, targets = tuple(inputs), dict(outputs)
    accepted = inspect.signature(handler).parameters
    wants_request = "request" in accepted
    progress = accepted["progress"].default if "progress" in accepted else None
    tracks_progress = isinstance(progress, gr.Progress)

    def for_gradio(shown: Mapping[str, Any] | None) -> Any:
        # Every output, in order, gr.skip() for those ``shown`` leaves out. (Gradio reads a dict of components as
        # the outputs it names, but an empty dict, or None, as one value: "didn't return enough output values"
        # for an event with several outputs, a red "Error" on each of them.)
        shown = shown or {}
        if unknown := set(shown) - set(targets):
            raise KeyError(f"{fn.__name__} returned {sorted(unknown)}, not outputs of its event ({list(targets)})")
        values = [shown.get(name, gr.skip()) for name in targets]
        return values[0] if len(values) == 1 else values

    def arguments(values: tuple) -> dict[str, Any]:
        # Gradio passes the inputs, then the progress bar and the request (the order of the signature below).
        values, given = list(values), {}
        if wants_request:
            given["request"] = values.pop()
        if tracks_progress:
            given["progress"] = values.pop()
        return {**dict(zip(names, values, strict=True)), **given}

    if inspect.isgeneratorfunction(handler):
        def fn(*values) -> Iterator[Any]:
            for shown in handler(**arguments(values)):
                yield for_gradio(shown)
    else:
        def fn(*values) -> Any:
            return for_gradio(handler(**arguments(values)))
    fn.__name__ = getattr(handler, "__name__", getattr(getattr(handler, "func", None), "__name__", "handler"))
    # Gradio names an endpoint's parameters after the function's: the inputs' names.
    parameters = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    if tracks_progress:  # gradio gives a progress bar to a parameter whose default is a gr.Progress
        parameters.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=progress))
    if wants_request:  # gradio passes its Request to a parameter annotated so (last here, after the inputs)
        parameters.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                            annotation=gr.Request))
        fn.__annotations__ = {"request": gr.Request}
    fn.__signature__ = inspect.Signature(parameters)
    return {"fn": fn, "inputs": list(inputs.values()), "outputs": list(targets.values())}


def validator(check: Callable[..., Mapping[str, str]], inputs: Mapping[str, gr.components.Component]) -> Callable:
    """A Gradio ``validator`` from ``check(**inputs) -> {input name: message}`` (the wrong fields only)."""
    names = tuple(inputs)

    def fn(*values) -> list[dict]:
        problems = check(**dict(zip(names, values, strict=True)))
        return [gr.validate(name not in problems, problems.get(name, "")) for name in names]
    return fn


# --- every request's values, checked before any handler sees them --------------------------------------------
NUMBER_KINDS = (gr.Slider, gr.Number)
TEXT_KINDS = (gr.Textbox, gr.Markdown)
CHOICE_KINDS = (gr.Radio, gr.Dropdown)


def clean(value: Any) -> Any:
    """``value`` with every string in it cleaned of lone surrogates (invalid UTF-8), however deeply nested."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


def field_names(block_fn) -> list[str]:
    """What each input of an event is called: its parameter name (the API's), else its label."""
    params = list(getattr(block_fn, "input_parameter_names", None) or [])
    if len(params) != len(block_fn.inputs):
        params = [None] * len(block_fn.inputs)
    return [param or getattr(block, "label", None) or f"input {k + 1}"
            for k, (param, block) in enumerate(zip(params, block_fn.inputs, strict=True))]


def with_defaults(block_fn, inputs: list[Any]) -> list[Any]:
    """``inputs`` of a raw API call that left out its endpoint's last parameters, completed with their initial
    values when every one left out is an :class:`ui.present.components.OptionalRadio` (else ``inputs`` unchanged)."""
    from ui.present.components import OptionalRadio

    api = [block for block in block_fn.inputs if not getattr(block, "skip_api", False)]
    if len(inputs) >= len(api) or len(inputs) >= len(block_fn.inputs):
        return inputs
    missing = api[len(inputs):]
    if not all(isinstance(block, OptionalRadio) for block in missing):
        return inputs
    values = iter([*inputs, *(block.value for block in missing)])
    return [None if getattr(block, "skip_api", False) else next(values) for block in block_fn.inputs]


class FieldError(gr.Error):
    """A malformed request's ``gr.Error``; printed as its message alone (gradio shows ``str(err)`` in places)."""

    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(as_text(message), **kwargs)

    def __str__(self) -> str:
        return self.message


def type_problem(block, value: Any) -> str | None:
    """Why ``value`` cannot be an input of ``block`` (None if it can): the wrong type, NaN or ±inf."""
    if isinstance(block, NUMBER_KINDS):
        if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
            return f"send a number, not {shorten(repr(value), 40)}."
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return f"send a number, not {shorten(repr(value), 40)}."
        if not math.isfinite(value):
            return f"{value} is not a number; send a finite number."
    elif isinstance(block, TEXT_KINDS):
        if value is not None and not isinstance(value, str):
            return f"send text (a string), not {type(value).__name__}."
    elif isinstance(block, CHOICE_KINDS):
        if value is not None and not getattr(block, "multiselect", False) and not isinstance(value, str | int | float):
            return f"send one of the choices (text), not {type(value).__name__}."
    elif isinstance(block, gr.Checkbox):
        if value is not None and not isinstance(value, bool):
            return f"send true or false, not {shorten(repr(value), 40)}."
    elif isinstance(block, gr.File):
        if value is not None and not isinstance(value, dict | list):
            return "send a file (upload it first), not " + type(value).__name__ + "."
        # Gradio downloads an input whose ``path`` is a web address into its cache (``url`` is only where the
        # browser may fetch an uploaded copy back, and is an http address for every real upload).
        for item in value if isinstance(value, list) else [value] if value is not None else []:
            path = str(item.get("path") or "") if isinstance(item, dict) else ""
            if path.lower().startswith(("http://", "https://", "ftp://", "//")):
                return "send a file uploaded through /upload, not a web address (the server fetches nothing)."
    return None


class StudioBlocks(gr.Blocks):
    """``gr.Blocks`` whose every event answers a malformed request — the wrong number of values, a value of the
    wrong type, NaN or ±inf — with a message naming the field, for browsers, gradio_client and raw HTTP alike
    (gradio's own answer to these is an error without a message). Strings are cleaned of lone surrogates
    before any handler sees them. A call that leaves out parameters added later
    (:class:`ui.present.components.OptionalRadio`) gets their initial values.
    """

    def validate_inputs(self, block_fn, inputs: list[Any]) -> None:
        expected = [block for block in block_fn.inputs if not getattr(block, "skip_api", False)]
        if len(inputs) != len(block_fn.inputs):
            names = [name for name, block in zip(field_names(block_fn), block_fn.inputs, strict=True)
                     if not getattr(block, "skip_api", False)]
            endpoint = f"/{block_fn.api_name}" if getattr(block_fn, "api_name", None) else "This request"
            raise FieldError(f"{endpoint} takes {len(expected)} value{'s' if len(expected) != 1 else ''} "
                             f"({', '.join(names)}); the request sent "
                           f"{len(inputs)}.", print_exception=False)

    async def preprocess_data(self, block_fn, inputs: list[Any], state, explicit_call: bool = False):
        inputs = with_defaults(block_fn, list(inputs))
        self.validate_inputs(block_fn, inputs)
        inputs = clean(list(inputs))
        names = field_names(block_fn)
        for name, block, value in zip(names, block_fn.inputs, inputs, strict=True):
            if not getattr(block, "stateful", False):
                problem = type_problem(block, value)
                if problem is not None:
                    raise FieldError(f"{name}: {problem}", print_exception=False)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Exception as err:  # noqa: BLE001 - a value gradio could not read: say which field
            culprit = _failing_field(block_fn, names, inputs)
            message = err.message if isinstance(err, gr.Error) else "this value could not be read"
            raise FieldError(f"{culprit}: {shorten(message, 200)}", print_exception=False) from err


def _failing_field(block_fn, names: list[str], inputs: list[Any]) -> str:
    for name, block, value in zip(names, block_fn.inputs, inputs, strict=True):
        if getattr(block, "stateful", False) or isinstance(block, gr.File):
            continue
        try:
            block.preprocess(value)
        except Exception:  # noqa: BLE001 - this is the field gradio could not read
            return name
    return next((name for name, block in zip(names, block_fn.inputs, strict=True) if isinstance(block, gr.File)),
                "A value")
