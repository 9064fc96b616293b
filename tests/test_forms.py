"""The Gradio layer's plumbing, checked the way gradio itself reads it: what a wired handler returns is a valid
answer for every output, and every control the app defines is drawn by one of gradio's built-in templates.

No model, no server, no browser.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Iterator

import gradio as gr
import pytest

import ui
from ui.serving import forms


def _shown_by_gradio(demo: gr.Blocks, answer) -> list:
    """What gradio makes of a handler's ``answer`` for the one event of ``demo`` (raising as it would)."""
    (block_fn,) = demo.fns.values()
    return asyncio.run(demo.postprocess_data(block_fn, answer, None))


def _event(handler, outputs: int) -> tuple[gr.Blocks, dict]:
    """A Blocks with one event wired by :func:`ui.serving.forms.wire`, ``outputs`` text outputs named ``out0``…"""
    with gr.Blocks() as demo:
        source = gr.Textbox(value="a")
        targets = {f"out{k}": gr.Textbox(value=f"was {k}") for k in range(outputs)}
        event = forms.wire(handler, {"value": source}, targets)
        source.change(**event)
    return demo, event


@pytest.mark.parametrize("outputs", [1, 2, 12])
@pytest.mark.parametrize("answer", [{}, None], ids=["empty dict", "None"])
def test_a_handler_that_changes_nothing_is_a_valid_answer_for_every_output(outputs: int, answer) -> None:
    demo, event = _event(lambda value: answer, outputs)
    shown = _shown_by_gradio(demo, event["fn"]("a"))
    assert len(shown) == outputs
    assert all(value == {"__type__": "update"} for value in shown)  # each output left as it is


@pytest.mark.parametrize("outputs", [1, 3])
def test_a_handler_changes_only_the_outputs_it_names(outputs: int) -> None:
    demo, event = _event(lambda value: {"out0": value.upper()}, outputs)
    shown = _shown_by_gradio(demo, event["fn"]("a"))
    assert shown[0] == "A" and all(value == {"__type__": "update"} for value in shown[1:])


def test_a_generator_handler_that_yields_nothing_new_is_a_valid_answer() -> None:
    def handler(value: str) -> Iterator[dict]:
        yield {}
        yield {"out1": value}

    demo, event = _event(handler, 2)
    first, second = (_shown_by_gradio(demo, answer) for answer in event["fn"]("b"))
    assert first == [{"__type__": "update"}] * 2 and second == [{"__type__": "update"}, "b"]


def test_an_output_the_event_is_not_wired_to_is_a_bug_named_at_once() -> None:
    _, event = _event(lambda value: {"nowhere": value}, 2)
    with pytest.raises(KeyError, match="nowhere"):
        event["fn"]("a")


def test_a_handler_is_given_gradios_progress_bar_and_request_by_name() -> None:
    from functools import partial

    from gradio.helpers import special_args

    seen = {}

    def handler(prefix: str, value: str, progress=gr.Progress(), request: gr.Request | None = None) -> dict:
        seen.update(progress=progress, request=request)
        return {"out0": prefix + value}

    demo, event = _event(partial(handler, "got "), 1)
    (block_fn,) = demo.fns.values()
    assert block_fn.tracks_progress
    # What gradio passes: the inputs, then the progress bar and the request where the signature asks for them.
    values, progress_index, _, _ = special_args(event["fn"], ["a"], request="the request")
    assert progress_index == 1 and values[2] == "the request"
    assert event["fn"](*values) == "got a"
    assert isinstance(seen["progress"], gr.Progress) and seen["request"] == "the request"


# --- a tab stands alone ------------------------------------------------------------------------------------------
def test_no_tab_imports_another_tab() -> None:
    """The modules of one tab (the package ``ui/tabs/inside/``) may import each other; a tab never imports another."""
    import ast
    from pathlib import Path

    tabs = Path(ui.__file__).parent / "tabs"
    for path in tabs.rglob("*.py"):
        own = path.relative_to(tabs).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "ui.tabs":
                names = [f"ui.tabs.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("ui.tabs.") or name.split(".")[2] == own, (str(path), name)


# --- every control is drawn by a template the browser has -----------------------------------------------------
def _template(cls: type[gr.components.Component]) -> str:
    """The frontend template gradio asks the browser for, for a component of class ``cls`` (gradio's own rule,
    ``Block.get_block_name``: a class marked ``is_template`` borrows its direct base's name)."""
    return gr.blocks.Block.get_block_name(cls.__new__(cls))


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))}


def _defined_in_ui() -> set[type[gr.components.Component]]:
    for module in pkgutil.walk_packages(ui.__path__, "ui."):
        importlib.import_module(module.name)
    return {cls for cls in _subclasses(gr.components.Component) if cls.__module__.split(".")[0] == "ui"}


def test_every_component_class_of_the_app_is_drawn_by_a_built_in_template() -> None:
    """A name the browser has no template for is loaded as a custom component that does not exist ("Failed to
    fetch dynamically imported module"), and the control is never drawn (issue 24: "Start from")."""
    built_in = {_template(getattr(gr, name)) for name in dir(gr)
                if isinstance(getattr(gr, name), type) and issubclass(getattr(gr, name), gr.components.Component)
                and getattr(gr, name) is not gr.components.Component}
    assert {"radio", "slider", "number", "dropdown"} <= built_in
    ours = _defined_in_ui()
    assert {"SettingSlider", "SettingNumber", "SettingDropdown", "SettingRadio", "OptionalRadio"} <= {
        cls.__name__ for cls in ours}
    missing = {cls.__qualname__: _template(cls) for cls in ours if _template(cls) not in built_in}
    assert not missing, missing


def test_a_file_input_given_a_web_address_is_refused_before_gradio_fetches_it():
    import gradio as gr

    from ui.serving.forms import type_problem

    box = gr.File()
    for value in ({"path": "https://example.org/big.bin"}, [{"path": "//host/file"}]):
        assert "web address" in type_problem(box, value)
    assert type_problem(box, {"path": "/tmp/gradio/abc/upload.txt", "url": None}) is None
    uploaded = {"path": "/tmp/gradio/abc/upload.txt", "url": "http://127.0.0.1:7860/gradio_api/file=/tmp/x"}
    assert type_problem(box, uploaded) is None  # a real upload, as a browser sends it back
    assert type_problem(box, None) is None
