"""Two visitors on one live server (gradio_client over HTTP): no API call of one reaches the other's corpus,
index or fine-tuned model. Tiny random model, loopback only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_helpers import serving
from ui.present import text
from ui.serving.config import StudioConfig
from ui.serving.registry import ModelRegistry
from ui.serving.studio import Studio

SECRET = ["zebra violin secret one", "zebra violin secret two", "zebra violin secret three",
          "zebra violin secret four"]


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", live_eval_pairs=24,
                          temp_root=str(tmp_path_factory.mktemp("sessions")))
    studio = Studio(config, ModelRegistry(config))
    with serving(studio) as port:
        yield f"http://127.0.0.1:{port}/", studio


def _sentences(table: dict) -> list[str]:
    column = table["headers"].index("Sentence")
    return [row[column] for row in table["data"]]


@pytest.mark.slow
def test_one_visitor_never_reaches_another_visitors_corpus_index_or_model(server, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, studio = server
    base = studio.config.base_label
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)
    corpus = tmp_path / "alice.txt"
    corpus.write_text("\n".join(SECRET) + "\n", encoding="utf-8")

    status = alice.predict(text.UPLOAD_CORPUS, handle_file(str(corpus)), base, "mean", api_name="/build_index")
    assert "alice.txt (4 sentences)" in status.replace("\\", "")  # the name is escaped for Markdown
    hits, _, alice_status, _ = alice.predict("zebra violin", 3, -1, base, "mean", api_name="/search")
    assert set(_sentences(hits)) <= set(SECRET) and "alice.txt" in alice_status.replace("\\", "")

    hits, compare, bob_status, _ = bob.predict("zebra violin", 20, -1, base, "mean", api_name="/search")
    assert "Bundled corpus" in bob_status
    assert not set(_sentences(hits)) & set(SECRET)  # Bob searches his own (the bundled) corpus

    job = alice.submit(text.SAMPLE_UNSUP, None, "unsup", 2, 4, 1e-4, 0.05, 0.1, "mean", 16, 30, base,
                       api_name="/finetune")
    final = job.result(timeout=120)
    label = re.search(r"Kept as \*\*(run 1 · [^*]+)\*\*", final[0]).group(1)

    for call in (lambda: bob.predict("a cat", "a dog", label, "mean", api_name="/similarity"),
                 lambda: bob.predict("zebra", 3, -1, label, "mean", api_name="/search"),
                 lambda: bob.predict(label, "mean", api_name="/pick_model")):
        with pytest.raises(AppError, match="no such fine-tuned run"):
            call()
    _, compare, _, note = bob.predict("zebra violin", 3, -1, base, "mean", api_name="/search")
    assert not compare["data"] and "Fine-tune a model" in note  # Bob has no run to compare
    with pytest.raises(AppError, match="no such fine-tuned run"):
        bob.predict(label, api_name="/delete_run")  # Bob cannot delete Alice's run
    _, _, bob_map = bob.predict(False, base, "mean", api_name="/embedding_map")
    assert "Showing the base model only" in bob_map and "zebra" not in bob_map

    score = alice.predict("a cat", "a dog", label, "mean", api_name="/similarity")
    assert score.startswith("## ")  # Alice's run is still hers and still there
    hits, compare, _, note = alice.predict("zebra violin", 3, -1, base, "mean", api_name="/search")
    assert set(_sentences(hits)) <= set(SECRET) and compare["data"] and label in note


def test_an_upload_over_the_cap_is_refused_before_it_is_stored(server) -> None:
    import httpx

    url, studio = server
    cap = studio.config.limits.file_bytes  # the app readers' and gradio's max_file_size alike
    response = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.txt", b"a\n" * (cap // 2 + 1000))},
                          timeout=60)
    assert response.status_code == 413, response.text[:200]
    small = httpx.post(f"{url}gradio_api/upload", files={"files": ("ok.txt", b"a cat\na dog\n")}, timeout=60)
    assert small.status_code == 200  # the server is fine afterwards


def test_server_files_outside_the_cache_and_assets_are_not_served(server, tiny_model_dir: Path) -> None:
    import httpx

    url, _ = server
    for path in ("/etc/passwd", str(tiny_model_dir / "config.json"), str(Path(__file__).resolve())):
        response = httpx.get(f"{url}gradio_api/file={path}", timeout=30)
        assert response.status_code in (403, 404), (path, response.status_code)
    asset = Path(__file__).resolve().parents[1] / "assets" / "corpus.csv"
    assert httpx.get(f"{url}gradio_api/file={asset}", timeout=30).status_code == 200
