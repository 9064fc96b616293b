"""SimCSE Studio: a Gradio app that teaches and demonstrates SimCSE (Gao, Yao & Chen, EMNLP 2021).

Run ``python app.py`` (serves on http://127.0.0.1:7860). Flags: ``--host``, ``--port``, ``--share``,
``--model``; or the environment variables SIMCSE_HOST (or GRADIO_SERVER_NAME), SIMCSE_PORT (or
GRADIO_SERVER_PORT) and SIMCSE_MODEL.
Importing this module and calling :func:`build_demo` loads no model: models load on first use.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr

from simcse_core.interop.interchange import official_pooler
from simcse_core.memory import limit_malloc_arenas
from simcse_core.model.catalogue import DEFAULT_MODEL
from simcse_core.teaching import lessons
from ui.present import browser, text
from ui.present.components import SettingDropdown
from ui.serving import forms
from ui.serving.config import StudioConfig
from ui.serving.errors import guarded
from ui.serving.memory import keep_for_life, release_memory_soon
from ui.serving.registry import ModelRegistry
from ui.serving.server import distrust_proxy_headers
from ui.serving.session import Session, end_session, session_state
from ui.serving.studio import Studio
from ui.tabs import embedding_map, evaluate, finetune, inside, lesson, retrieval, similarity

logger = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "assets"

CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
#header h1 { margin-bottom: 0.2em; }
#header p { font-size: 1.05em; max-width: 62em; }
#model-row { align-items: end; }
#sim-score h2 { margin: 0.1em 0; }
/* These take the page's width, never set it. Without this, the tab bar's six buttons made a phone's page 726 px
   wide (and gradio's "More tabs" menu never opened), and the Ablations table, whose widest column gradio set to
   1,214 px, made it 1,280 px wide; contained, the table scrolls inside its box. */
.tab-wrapper, #ablation-table { contain: inline-size; }
@media (max-width: 640px) {
  #model-picker, #pooler-picker, #inside-start-row > *, #inside-start-note { min-width: 100% !important; }
}
"""


def theme() -> gr.themes.Theme:
    """A calm, readable theme for a projector or a Space."""
    # System fonts: the theme's own (Montserrat) drew headings' "E" as "Ɛ" in Chromium.
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="sky", neutral_hue="slate",
                          font=("ui-sans-serif", "system-ui", "Liberation Sans", "DejaVu Sans", "sans-serif"))


@guarded
def pick_model(studio: Studio, choice: str, pooler: str, session: Session, progress=gr.Progress()) -> dict:
    """Handler for the model picker: load the chosen model once, or select one of the session's runs.

    Returns the pooler picker (when the model decides it), the status line and the Delete-run button.
    """
    record = studio.run_for(choice, session)
    if record is not None:
        return {"pooler": record.encoder.config.pooler, "status": f"Using your fine-tuned **{record.label}**.",
                "delete": gr.update(visible=True)}
    name = studio.config.model_name(choice)
    if not studio.registry.is_loaded(name):
        progress(0.1, desc=f"Loading {choice}")
    trained_with = official_pooler(name)  # an official SimCSE checkpoint is read with the pooler it was trained with
    encoder = studio.encoder_for(choice, trained_with or pooler, session)
    note = f" It was trained with the `{trained_with}` pooler, so that is selected." if trained_with else ""
    shown = {"status": f"Model ready: `{encoder.description}` ({encoder.dim}-dimensional vectors).{note}",
             "delete": gr.update(visible=False)}
    return {**shown, "pooler": trained_with} if trained_with else shown


def pick_failed(studio: Studio) -> dict:
    """Handler for a model that could not load: the picker goes back to the base model."""
    return {"picker": studio.config.base_label, "delete": gr.update(visible=False)}


@guarded
def delete_run(studio: Studio, choice: str, session: Session) -> dict:
    """Handler: forget the picked run (its model, indexes and files); the picker returns to the base model."""
    record = studio.run_for(choice, session)
    if record is None:
        return {"status": "Pick one of your runs in the model picker first.", "session": session}
    session.delete_run(record.run_id)
    release_memory_soon()  # once this handler's frame (and the record) is gone
    return {"picker": studio.picker_update(session), "status": f"Deleted **{record.label}**.",
            "delete": gr.update(visible=False), "session": session}


@guarded
def page_loaded(studio: Studio, session: Session) -> dict:
    """After a page load: the picker lists the runs a reload brought back (its notice says so)."""
    return {"picker": studio.picker_update(session)} if session.runs else {}


def picker_info(config: StudioConfig) -> str:
    """The picker's help line: what it lists, and why hub models are missing offline."""
    if config.allow_local_models:
        return text.MODEL_PICKER_INFO + config.picker_note()
    return "Used by the tabs outside the lessons; your runs appear here." + config.picker_note()


def describe_choice(choice: str, pooler: str) -> str:
    """The line under the pickers: which model and pooler the tabs use."""
    return f"**{choice}**, `{pooler}` pooler (lessons start from `{lessons.START_MODEL}`)."


def choice_shown(choice: str, pooler: str) -> dict:
    """Handler: the line under the pickers follows them (programmatic changes too)."""
    return {"status": describe_choice(choice, pooler)}


def build_demo(model: str | None = None, studio: Studio | None = None) -> gr.Blocks:
    """Build the app. ``model`` (else $SIMCSE_MODEL, else the bundled model) is the base model offered first.

    Nothing heavy happens here: the model loads on first use (or in :func:`main`, in the background).
    """
    if studio is None:
        config = StudioConfig(model=model or os.environ.get("SIMCSE_MODEL") or DEFAULT_MODEL)
        studio = Studio(config, ModelRegistry(config))
    config = studio.config
    # delete_cache: every 10 minutes, Gradio's copies of uploads and downloads (a model zip is ~80 MB) older than
    # a session's time to live are deleted.
    ttl = int(config.session_ttl_s)
    with forms.StudioBlocks(title=text.TITLE, delete_cache=(600, ttl)) as demo:
        session = session_state(config, demo, studio.people)
        gr.Markdown(text.HEADER, elem_id="header")
        with gr.Accordion("How it works: the loss and the paper's settings", open=False, elem_id="how-it-works"):
            gr.Markdown(text.HOW_IT_WORKS, latex_delimiters=text.LATEX_DELIMITERS)
        with gr.Row(elem_id="model-row"):
            picker = SettingDropdown(config.model_choices(), value=config.base_label, label="Model",
                                     info=picker_info(config), allow_custom_value=config.allow_local_models,
                                     elem_id="model-picker", scale=3)
            pooler = SettingDropdown(text.pooler_choices(), value=config.default_pooler, label="Pooler",
                                     info=text.POOLER_PICKER_INFO, elem_id="pooler-picker", scale=3)
            with gr.Column(scale=2, min_width=200):
                model_status = gr.Markdown(describe_choice(config.base_label, config.default_pooler),
                                           elem_id="model-status")
                delete = gr.Button("Delete run", size="sm", variant="secondary", visible=False,
                                   elem_id="delete-run")
        lesson_bar = lesson.build()
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # a phone shows every tab's name, not a "…" menu
            with gr.Tab("Similarity", id="tab-similarity", elem_id="tab-similarity"):
                similarity.build(studio, picker, pooler, session)
            with gr.Tab("Inside SimCSE", id="tab-inside", elem_id="tab-inside"):
                inside_panels = inside.build(studio, picker, pooler, session)
            with gr.Tab("Retrieval", id="tab-retrieval", elem_id="tab-retrieval"):
                retrieval.build(studio, picker, pooler, session)
            with gr.Tab("Fine-tune", id="tab-finetune", elem_id="tab-finetune"):
                finetune.build(studio, picker, pooler, session)
            with gr.Tab("Embedding map", id="tab-map", elem_id="tab-map"):
                embedding_map.build(studio, picker, pooler, session)
            with gr.Tab("Evaluate", id="tab-evaluate", elem_id="tab-evaluate"):
                evaluate.build(studio, picker, pooler, session)
        lesson.wire(lesson_bar, tabs, inside_panels)
        session.loaded.then(**forms.wire(functools.partial(page_loaded, studio), {"session": session},
                                         {"picker": picker}), queue=False, api_visibility="private")
        # The /pick_model endpoint's parameters and outputs, in these orders (the session is not a parameter).
        picked = picker.input(**forms.wire(functools.partial(pick_model, studio),
                                           {"choice": picker, "pooler": pooler, "session": session},
                                           {"picker": picker, "pooler": pooler, "status": model_status,
                                            "delete": delete}), api_name="pick_model", **studio.queues.heavy)
        # A model that cannot load: the error names it (toast, or an exception for API callers), and the
        # picker goes back to the base model so that every tab keeps working.
        picked.failure(**forms.wire(functools.partial(pick_failed, studio), {}, {"picker": picker, "delete": delete}),
                       queue=False, api_visibility="private")
        deleted = {"picker": picker, "status": model_status, "delete": delete, "session": session}
        delete.click(**forms.wire(functools.partial(delete_run, studio), {"choice": picker, "session": session},
                                  deleted), api_name="delete_run", **studio.queues.encode)
        # A closed tab ends its session now (gradio would keep a closed session's state for an hour).
        def on_unload(request: gr.Request) -> None:
            end_session(demo.state_holder, request.session_hash)

        demo.unload(on_unload)
        # Programmatic changes too (a finished fine-tune selects its model): keep the line under the pickers true.
        gr.on([picker.change, pooler.change], **forms.wire(choice_shown, {"choice": picker, "pooler": pooler},
                                                           {"status": model_status}),
              queue=False, api_visibility="private")
    return demo


def warm_up(studio: Studio) -> threading.Thread:
    """Prepare, in the background and in the order visitors need it, what first clicks would wait for.

    One thread (never raises): the base model and its inference weights (the first similarity answer), the
    bundled corpus's index (Retrieval), then the map worker, which pays UMAP's numba compilation (~8 s of CPU on
    2 cores) in its own process. In that order, because compiling beside the model's loading slowed the launch
    to the first similarity answer from 6.8 s to 10.2 s (``bench/app_latency.py --startup-only``).
    """

    def run() -> None:
        start = time.perf_counter()
        try:
            encoder = studio.registry.get(studio.config.model, studio.config.default_pooler)
            encoder.encode(["warm up"])  # makes the inference weights and the first kernels
            logger.info("Base model ready in %.1f s", time.perf_counter() - start)
            # The bundled corpus's index under the base model is the same for every visitor: build it now.
            nobody = Session()
            studio.get_index(nobody, encoder, studio.model_key(studio.config.base_label,
                                                               studio.config.default_pooler, nobody))
            logger.info("Bundled corpus indexed after %.1f s", time.perf_counter() - start)
            keep_for_life()
        except Exception:  # noqa: BLE001 - the first request will report the problem to the user
            logger.exception("Could not preload the base model and the bundled corpus index")
        try:
            if studio.map_worker is not None:
                studio.map_worker.start()  # it compiles UMAP's numba code in its own process, on its own time
            else:
                from simcse_core.teaching import projection

                projection.warm_up()
        except Exception:  # noqa: BLE001 - the first map will simply be slower
            logger.exception("UMAP warm-up failed")

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env_port = os.environ.get("SIMCSE_PORT") or os.environ.get("GRADIO_SERVER_PORT") or "7860"
    parser = argparse.ArgumentParser(description="SimCSE Studio: learn and demo SimCSE in the browser.")
    # A Hugging Face Space sets GRADIO_SERVER_NAME=0.0.0.0; on a laptop nothing is exposed beyond this machine.
    env_host = os.environ.get("SIMCSE_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    parser.add_argument("--host", default=env_host,
                        help="address to serve on (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=int(env_port), help="port (default 7860)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument("--model", default=os.environ.get("SIMCSE_MODEL", DEFAULT_MODEL),
                        help="base model: 'minilm' (bundled), a local folder, or a hub id when online")
    parser.add_argument("--allow-local-models", action="store_true",
                        help="let visitors load model folders of this server by typing their path (off: only "
                             "the base model, the bundled one, your runs and, online, the allow-listed hub ids)")
    parser.add_argument("--trusted-proxy", type=int, nargs="?", const=1, default=StudioConfig.trusted_proxy,
                        metavar="N",
                        help="N reverse proxies (1 when given bare) append to X-Forwarded-For: a client's address is "
                             "the N-th entry from the right, the one the outermost proxy wrote (off: the connection's "
                             "address, and no proxy header is believed)")
    parser.add_argument("--runs-per-person", type=int, default=StudioConfig.max_runs_per_person,
                        help="runs one person (a browser, all its tabs) may have training or waiting at once "
                             f"(default {StudioConfig.max_runs_per_person})")
    parser.add_argument("--runs-per-address", type=int, default=StudioConfig.max_runs_per_address,
                        help="runs training or waiting from one address at once, all its people together: a backstop "
                             "(a classroom behind one NAT shares an address; default "
                             f"{StudioConfig.max_runs_per_address})")
    parser.add_argument("--kept-runs", type=int, default=StudioConfig.max_kept_runs,
                        help="fine-tuned runs kept in memory by all visitors together; beyond it the oldest of an "
                             f"idle visitor is dropped, with a message (default {StudioConfig.max_kept_runs})")
    return parser.parse_args(argv)


def server_folders() -> str:
    """Make this server's folder, removed when it stops, and return where session folders go.

    Gradio's cache (uploads, and copies of downloads) is this server's own, inside it, unless the operator chose
    one with GRADIO_TEMP_DIR; session folders live inside the cache, so gradio serves a run's zip from where it
    was written instead of copying it, and Delete run or the session's end removes the only copy.
    """
    server = tempfile.TemporaryDirectory(prefix="simcse-studio-server-")
    atexit.register(server.cleanup)
    if not os.environ.get("GRADIO_TEMP_DIR"):
        os.environ["GRADIO_TEMP_DIR"] = str(Path(server.name) / "gradio-cache")
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    sessions = cache / f"simcse-sessions-{os.getpid()}"
    sessions.mkdir(parents=True, exist_ok=True)
    atexit.register(shutil.rmtree, sessions, True)
    return str(sessions)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    limit_malloc_arenas()  # before any thread allocates: see simcse_core.memory
    if args.trusted_proxy < 0:
        raise SystemExit("--trusted-proxy: the number of proxies is 0 or more")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    temp_root = server_folders()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` runs the atexit clean-up too
    config = StudioConfig(model=args.model, temp_root=temp_root, allow_local_models=args.allow_local_models,
                          trusted_proxy=args.trusted_proxy, max_runs_per_person=args.runs_per_person,
                          max_runs_per_address=args.runs_per_address, max_kept_runs=args.kept_runs)
    studio = Studio(config, ModelRegistry(config))
    warm_up(studio)
    demo = build_demo(studio=studio)
    demo.queue(default_concurrency_limit=2)
    distrust_proxy_headers()  # before launch: uvicorn reads it when gradio makes its config
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **page_look(),
                **launch_limits(config, demo))


def page_look() -> dict:
    """The page's theme, style sheet and head script (``demo.launch`` arguments)."""
    return {"theme": theme(), "css": CSS + lesson.CSS, "head": browser.PHONE_PLOTS_HEAD}


def launch_limits(config: StudioConfig, demo: gr.Blocks | None = None) -> dict:
    """The safety settings of ``demo.launch``: upload and request caps, each address's share of uploads and their
    life, unknown events, unread /call events, served folders, error details."""
    from starlette.middleware import Middleware

    from ui.serving.calls import UnreadCallGuard
    from ui.serving.server import BodySizeLimit, UnknownEventGuard
    from ui.serving.uploads import UploadQuota, upload_sweeper

    # Gradio refuses a bigger upload while it streams in (HTTP 413), before anything is stored: the same number
    # of bytes the app's file readers accept. Uploads count against their address (HTTP 429 beyond its share)
    # and are deleted upload_ttl_s after they arrive. Any other request body over its cap is refused before it
    # is parsed; one naming an event the app does not have gets HTTP 404 (gradio's own answer is a 500). A /call
    # event whose results nobody opens is cancelled (its run gives back its slot). No file of this server is
    # served except gradio's own cache (uploads, downloads) and the app's assets. Errors show only their message
    # (gr.Error), never a traceback.
    limits = config.limits
    middleware = [Middleware(UploadQuota, max_bytes=config.upload_bytes_per_address, window_s=config.upload_window_s,
                             trusted_proxy=config.trusted_proxy),
                  Middleware(BodySizeLimit, max_bytes=limits.request_bytes),
                  Middleware(UnreadCallGuard, read_within_s=config.call_read_within_s)]
    if demo is not None:
        middleware.append(Middleware(UnknownEventGuard, known=lambda: demo.fns.keys()))
    return {"max_file_size": limits.file_bytes, "allowed_paths": [str(ASSETS)], "show_error": False,
            "app_kwargs": {"middleware": middleware, "lifespan": upload_sweeper(config.upload_ttl_s)}}


if __name__ == "__main__":
    main()
