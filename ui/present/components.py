"""Input components whose values the handlers check themselves, so that every message names its field.

Gradio's own components refuse an out-of-range or unlisted value (an API caller's) before the handler runs,
with a message that names no field ("Value 5000 is greater than maximum value 2000."; "Value: 'x' is not in
the list of choices: [...]"). These look and behave the same in the browser; their values reach the handler
as sent, and the handler's checks (ui.serving.errors.check_number, check_choice) name the field.

Each class subclasses a gradio component directly and is marked ``is_template``: gradio then asks the browser for
its direct base's template (``Block.get_block_name``), one the browser has. A class derived from one of these
would ask for a template named after it ("settingradio"), load it as a custom component that does not exist,
and never be drawn; so behaviour is shared by :func:`as_sent`, not by inheritance (tests/test_forms.py checks).

Gradio writes a type stub (components.pyi) next to this file on import; it is ignored by git.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


def as_sent(self, payload: Any) -> Any:
    """``preprocess`` of these components: the value as the browser or API client sent it."""
    return payload


class SettingSlider(gr.Slider):
    """A slider checked by the handler."""

    is_template = True
    preprocess = as_sent


class SettingNumber(gr.Number):
    """A number field checked by the handler (see :class:`SettingSlider`); bounds are only shown."""

    is_template = True
    preprocess = as_sent


class SettingDropdown(gr.Dropdown):
    """A dropdown whose value the handler checks (see :class:`SettingSlider`): the message names the field."""

    is_template = True
    preprocess = as_sent


class SettingRadio(gr.Radio):
    """Radio buttons whose value the handler checks (see :class:`SettingSlider`)."""

    is_template = True
    preprocess = as_sent


class OptionalRadio(gr.Radio):
    """Radio buttons checked by the handler (as :class:`SettingRadio`) and added to an endpoint after its first
    release: an API call that leaves the value out (an older client, sending the parameters it knew) is given
    the component's initial value (:meth:`ui.serving.forms.StudioBlocks.preprocess_data`)."""

    is_template = True
    preprocess = as_sent
