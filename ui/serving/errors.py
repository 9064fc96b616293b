"""The error flow between handlers and visitors: the project's user errors, the checks that raise them, and
the boundary (:func:`guarded`) where every error becomes a ``gr.Error`` a browser or API client sees.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from simcse_core.data import DataError
from simcse_core.evaluation.sets import EvaluationDataUnavailable
from simcse_core.limits import LIMITS, InputLimits
from simcse_core.model.catalogue import ModelNotAvailableError
from simcse_core.training.config import SettingError, check_setting, setting_spec
from ui.present import text

logger = logging.getLogger(__name__)


class InputError(ValueError):
    """Something a visitor typed, chose or uploaded cannot be used; the message says which field and why."""


# The project's own exception types whose message is written for the visitor. Anything else is a bug: it is
# logged with its traceback and the visitor sees a short apology with an id to quote.
USER_ERRORS = (InputError, DataError, ModelNotAvailableError, EvaluationDataUnavailable, SettingError)


def as_gr_error(err: BaseException, where: str = "a handler") -> gr.Error:
    """The ``gr.Error`` a visitor (browser or API client) sees for ``err``.

    A user error keeps its own message. Anything else is logged with its traceback under a short id, and the
    visitor gets an apology quoting that id.
    """
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, USER_ERRORS):
        logger.info("User error in %s: %s", where, err)
        return gr.Error(as_text(str(err)), print_exception=False)
    error_id = uuid.uuid4().hex[:8]
    logger.error("Unexpected error %s in %s", error_id, where, exc_info=err)
    return gr.Error(text.APOLOGY + f" (error id {error_id})", print_exception=False)


def as_text(message: str) -> str:
    """``message`` escaped for the browser, which renders a toast's message as HTML: a visitor's text echoed in
    it (``<img src=x onerror=…>``) shows as text and makes no element."""
    return html.escape(message, quote=False)


def report_error(err: BaseException, where: str = "a handler") -> None:
    """Show ``err`` as a warning toast without ending the event (for errors in the middle of a stream)."""
    gr.Warning(as_gr_error(err, where).message)


def guarded(fn: Callable) -> Callable:
    """Wrap a handler (function or generator): every error reaches the visitor as a ``gr.Error``.

    Browser visitors see a toast; API clients (gradio_client) get an exception with the same message. Messages
    the server left for the visitor (``Session.notify``: a kept run it had to drop) are shown first, as warnings.
    """
    where = getattr(fn, "__name__", "a handler")
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs) -> Iterator:
            show_notices(*args, *kwargs.values())
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the boundary between the app and the visitor
                raise as_gr_error(err, where) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        show_notices(*args, *kwargs.values())
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the boundary between the app and the visitor
            raise as_gr_error(err, where) from err
    return wrapper


def show_notices(*arguments: object) -> None:
    """Show, as warning toasts, the messages left for the visitor in a session among a handler's ``arguments``
    (anything with ``take_notices``, i.e. a ``ui.serving.session.Session``)."""
    for argument in arguments:
        take = getattr(type(argument), "take_notices", None)
        if take is not None:
            for notice in take(argument):
                gr.Warning(as_text(notice))


MARKDOWN_PUNCTUATION = frozenset("\\`*_{}[]()#+-.!|~>$:")  # '&' stays: it begins the escaped entities


def as_markdown_text(value: str) -> str:
    """A visitor's text (an uploaded line, a file name) to put inside Markdown: it shows as typed. HTML is escaped
    (``<img src=x onerror=…>`` makes no element) and so is Markdown's punctuation (no link, emphasis or heading
    made of it)."""
    escaped = html.escape(clean_text(str(value)), quote=False)
    return "".join("\\" + ch if ch in MARKDOWN_PUNCTUATION else ch for ch in escaped)


# --- field checks: each message names its field ---------------------------------------------------------------
def shorten(value: object, limit: int = 60) -> str:
    """A visitor's string, safe to echo in a message: short, printable, valid UTF-8."""
    shown = str(value).encode("utf-8", "replace").decode("utf-8", "replace")
    shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def clean_text(value: str) -> str:
    """``value`` with invalid UTF-8 (lone surrogates) replaced, so tokenizers and JSON never choke on it."""
    return value.encode("utf-8", "replace").decode("utf-8")


def check_sentence(value: str | None, what: str, max_chars: int) -> str:
    """A stripped, non-empty sentence of at most ``max_chars`` characters, else InputError naming ``what``."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"The {what} must be text.")
    sentence = (value or "").strip()
    if not sentence:
        raise InputError(f"The {what} is empty. Type a sentence first.")
    if len(sentence) > max_chars:
        raise InputError(f"The {what} has {len(sentence):,} characters; the limit is {max_chars:,}. "
                         "Shorten it to a sentence or two.")
    return clean_text(sentence)


def check_lines(value: object, what: str, low: int, high: int, *, parts: int = 1,
                limits: InputLimits = LIMITS) -> list[str]:
    """The non-blank lines of a text box (``low`` to ``high`` of them, each at most ``parts`` sentences of at most
    ``limits.sentence_chars`` characters split by "|"), else InputError naming the box. The whole box is
    measured before it is split, so a megabyte of text costs nothing."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"The {what} box must be text, one sentence per line.")
    text = value or ""
    longest = limits.box_chars(high, parts)
    if len(text) > longest:
        raise InputError(f"The {what} box has {len(text):,} characters; the limit is {longest:,}. Shorten it.")
    lines = [line.strip() for line in clean_text(text).splitlines() if line.strip()]
    if not low <= len(lines) <= high:
        raise InputError(f"The {what} box needs {low} to {high} lines (one per line); it has {len(lines)}.")
    for k, line in enumerate(lines, start=1):
        if max(len(part) for part in line.split("|")) > limits.sentence_chars:
            raise InputError(f"The {what} box, line {k}: a sentence has more than {limits.sentence_chars:,} "
                             "characters (the limit). Shorten it.")
    return lines


def check_number(value: object, field_name: str, low: float, high: float, *, whole: bool = False) -> float:
    """A finite number in [low, high] (InputError naming the field otherwise)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{field_name}: enter a number between {low:g} and {high:g}.") from None
    if not math.isfinite(number):
        raise InputError(f"{field_name}: {shorten(value)} is not a number; enter one between {low:g} and "
                         f"{high:g}.")
    if not low <= number <= high:
        raise InputError(f"{field_name}: {number:g} is outside the allowed range {low:g} to {high:g}.")
    if whole and number != int(number):
        raise InputError(f"{field_name}: {number:g} is not a whole number.")
    return number


def check_training_setting(value: object, name: str, field_name: str,
                           allowed: tuple[float, float] | None = None) -> Any:
    """The training setting ``name`` checked by the core (its kind, range and canonical form: 64.0 → 64), then
    against ``allowed``, the app's narrower range (StudioConfig.setting_range). InputError naming the field and
    what it may be: the app's range for a number, the core's choices for a choice."""
    spec = setting_spec(name)
    number = spec.kind in ("int", "float")
    low, high = allowed or (spec.low, spec.high)
    try:
        value = check_setting(name, value)
    except SettingError as err:
        if number and not isinstance(value, bool):
            check_number(value, field_name, low, high, whole=spec.kind == "int")
        if spec.kind == "choice":
            check_choice(value, field_name, spec.choices)
        raise InputError(f"{field_name}: {err.problems[name].removeprefix(name + ' ')}") from None
    if number and value is not None:
        check_number(value, field_name, low, high)
    return value


def check_choice(value: object, field_name: str, allowed: list[str] | tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else InputError naming the field."""
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{field_name}: '{shorten(value)}' is not one of the choices ({', '.join(allowed)}).")
    return value
