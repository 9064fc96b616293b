"""What a visitor may send, in one table: the file readers, every text handler of the app, and the server's
request and upload caps read their limits from :data:`LIMITS`.

Text over a limit is refused with a message naming the field, never cut short silently.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputLimits:
    """Caps on visitors' text, files, requests and disk (one field per cap; the README's "Limits" lists them)."""

    sentence_chars: int = 1_000  # characters in one sentence, typed or in a file
    list_sentences: int = 40  # sentences in a typed list (the heatmap)
    twin_sentences: int = 8  # sentences on the dropout-twins panel (each is encoded 2 + 12 times)
    batch_rows: int = 32  # rows of the loss panel's batch (a small batch a person can read)
    row_parts: int = 3  # sentences in one typed row at most: anchor | positive | hard negative
    name_chars: int = 300  # a model name, a choice, a pooler
    file_rows: int = 20_000  # sentences, pairs or triplets in one uploaded file
    file_bytes: int = 20_000_000  # one uploaded file (gradio's max_file_size is this many bytes too)
    request_bytes: int = 1_000_000  # one request body other than an upload, refused before it is parsed
    session_disk_bytes: int = 600_000_000  # files one visitor's session keeps (model zips, vectors, exports)

    def box_chars(self, rows: int, parts: int = 1) -> int:
        """Longest text box of ``rows`` lines of ``parts`` sentences each (separators included)."""
        return rows * parts * (self.sentence_chars + 3)


LIMITS = InputLimits()
