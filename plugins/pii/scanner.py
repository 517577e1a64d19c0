"""Finding personal data in a table with Presidio: the values of each column analysed
together, findings per column with their counts, confidence and masked examples.

Presidio's pattern recognizers (email, phone, credit card, IBAN, IP address, national ids
such as US SSNs and NHS numbers, and the ``pii.custom_recognizers`` of the settings) need
no language model: they run on a blank spaCy pipeline. Names, places and organisations
need a spaCy NER model, an installed package named by ``pii.ner_model``; when it is not
installed the scan says so, and never downloads one. Presidio checks e-mail domains with
``tldextract``, which would fetch the public suffix list: it is given the copy bundled with
it instead.

Building an analyzer takes a second or more (spaCy, and the NER model when there is one),
so one is kept per configuration for the life of the process.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portal.settings import CustomRecognizer, PiiSettings

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

LANGUAGE = "en"
EXAMPLES = 3  # masked examples kept per column and entity type
# Between two values of a column: a paragraph break, which no pattern and no named entity
# spans (spaCy joins names on consecutive lines into one).
SEPARATOR = "\n\n"
# spaCy's labels that say nothing about a person; Presidio would keep them as they are.
IGNORED_LABELS = (
    "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "WORK_OF_ART", "LAW", "LANGUAGE",
    "EVENT", "PRODUCT", "FAC",
)  # fmt: skip
MASK = "•"
# Found by Presidio but not personal data on their own: a date, a URL, a UUID or a
# company's name in a column says nothing about a person.
NOT_PERSONAL = frozenset({"DATE_TIME", "URL", "UUID", "NRP", "ORGANIZATION"})
# Phone numbers have seven digits or more: ``1642`` or ``SKU-16448`` are valid numbers
# somewhere for the phonenumbers library, but no one's phone.
MIN_DIGITS = {"PHONE_NUMBER": 7}
# A decimal number with a fraction (a measurement, a score) is no identifier, though its
# digits may pass a card number's or an NHS number's checksum.
DECIMAL = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Analyzer:
    """Presidio's engine as configured, and what it can find."""

    engine: AnalyzerEngine
    recognizers: list[str]  # the recognizers that run, by name
    ner_model: str | None  # the spaCy model finding names, None when patterns only
    notes: list[str]  # what it cannot find, and why


@dataclass
class Finding:
    """One entity type found in a column."""

    entity: str
    count: int = 0  # values of the sample holding it
    score_sum: float = 0.0
    max_score: float = 0.0
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "count": self.count,
            "mean_score": round(self.score_sum / self.count, 3) if self.count else 0.0,
            "max_score": round(self.max_score, 3),
            "examples": self.examples,
        }


@dataclass(frozen=True)
class ColumnScan:
    """A column's findings, and which of its values held each (indexes into the sample)."""

    column: str
    values: int  # non-empty values scanned
    findings: list[Finding]
    rows: dict[str, set[int]]  # entity type: the rows whose value holds it

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "values": self.values,
            "findings": [found.as_dict() for found in self.findings],
        }


def analyzer_for(settings: PiiSettings) -> Analyzer:
    """The analyzer for the settings' NER model and custom recognizers (kept once built)."""
    custom = json.dumps([found.model_dump() for found in settings.custom_recognizers])
    return _analyzer(settings.ner_model, custom)


@functools.cache
def _analyzer(ner_model: str | None, custom_json: str) -> Analyzer:
    custom = [CustomRecognizer.model_validate(found) for found in json.loads(custom_json)]
    _offline_domains()
    import spacy
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    notes: list[str] = []
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": ner_model or ""}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=list(IGNORED_LABELS)),
    )
    # Loaded here rather than by Presidio, which would download a missing model.
    pipelines: dict[str, Any]
    if ner_model and spacy.util.is_package(ner_model):
        pipelines = {LANGUAGE: _named_entities_only(spacy.load(ner_model))}
        used_model: str | None = ner_model
    else:
        pipelines = {LANGUAGE: spacy.blank(LANGUAGE)}
        used_model = None
        why = (
            f"the NER model {ner_model} is not installed (pip install 'paved[ner]')"
            if ner_model
            else "no NER model is set (pii.ner_model)"
        )
        notes.append(f"names, places and organisations were not looked for: {why}")
    nlp_engine.nlp = pipelines  # type: ignore[assignment]
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp_engine)
    if used_model is None:
        registry.remove_recognizer("SpacyRecognizer")
    for recognizer in custom:
        registry.add_recognizer(
            PatternRecognizer(
                supported_entity=recognizer.entity,
                name=f"Custom{recognizer.entity.title().replace('_', '')}Recognizer",
                patterns=[
                    Pattern(
                        name=f"{recognizer.entity.lower()}_{index}",
                        regex=regex,
                        score=recognizer.score,
                    )
                    for index, regex in enumerate(recognizer.patterns)
                ],
                context=recognizer.context,
                supported_language=LANGUAGE,
            )
        )
    engine = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[LANGUAGE],
        context_aware_enhancer=_column_context(),
    )
    recognizers: list[Any] = list(registry.recognizers)
    names = sorted({str(recognizer.name) for recognizer in recognizers})
    return Analyzer(engine, names, used_model, notes)


def _named_entities_only(nlp: Any) -> Any:
    """The pipeline with only the entity recognizer running (and the shared layer it
    listens to, in models that have one): tagging, parsing and lemmas would cost more than
    half the time of a scan, and the findings need none of them."""
    keep = {"ner"} | {
        name
        for name, pipe in nlp.pipeline
        if "ner" in (getattr(pipe, "listening_components", None) or ())
    }
    for name in nlp.pipe_names:
        if name not in keep:
            nlp.disable_pipe(name)
    return nlp


def _column_context() -> Any:
    """Presidio's context enhancer, given the column's name as the only context: the words
    around a value in the text of a column are other rows' values, and reading them for
    each finding costs time in proportion to the whole text."""
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class ColumnContext(LemmaContextAwareEnhancer):
        def _extract_surrounding_words(
            self, nlp_artifacts: Any, word: str, start: int
        ) -> list[str]:
            return []

    return ColumnContext(context_matching_mode="substring")


def _offline_domains() -> None:
    """Make ``tldextract`` use the public suffix list bundled with it, never the network."""
    import tldextract
    import tldextract.tldextract as extracting

    extracting.TLD_EXTRACTOR = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )


def scan_columns(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    analyzer: Analyzer,
    *,
    min_score: float,
) -> list[ColumnScan]:
    """Each column's findings over ``rows`` (the sample)."""
    return [
        scan_column(name, [row[index] for row in rows], analyzer, min_score=min_score)
        for index, name in enumerate(columns)
    ]


def scan_column(
    name: str, values: Sequence[str], analyzer: Analyzer, *, min_score: float
) -> ColumnScan:
    """The findings of one column. Its values are analysed as one text, a paragraph each: one
    pass of spaCy and of each recognizer instead of one per value. Each finding is given
    back to the value it lies in (one spanning two values is dropped). Where two findings
    overlap in a value, one stays: of the column's own type if it has one (in a column of
    phone numbers, a number that also passes an NHS number's checksum is a phone number),
    else the longer one, else the more confident one (an IP address is not a phone
    number). The column's name is the context: ``email`` raises the confidence of
    an e-mail address there. Decimal numbers are not scanned."""
    starts: list[int] = []
    rows: list[int] = []
    parts: list[str] = []
    offset = 0
    for row, value in enumerate(values):
        text = " ".join(str(value).split())  # one line, whatever the value held
        if not text or DECIMAL.match(text):
            continue
        starts.append(offset)
        rows.append(row)
        parts.append(text)
        offset += len(text) + len(SEPARATOR)
    if not parts:
        return ColumnScan(name, 0, [], {})
    text = SEPARATOR.join(parts)
    context = [word for word in re.split(r"[^A-Za-z]+", name.lower()) if word]
    results = analyzer.engine.analyze(
        text=text, language=LANGUAGE, context=context, score_threshold=min_score
    )
    by_value: dict[int, list[Any]] = {}
    frequency: dict[str, int] = {}
    for result in results:
        if result.entity_type in NOT_PERSONAL:
            continue
        digits = sum(char.isdigit() for char in text[result.start : result.end])
        if digits < MIN_DIGITS.get(result.entity_type, 0):
            continue
        index = bisect.bisect_right(starts, result.start) - 1
        if result.end > starts[index] + len(parts[index]):
            continue  # across two values
        by_value.setdefault(index, []).append(result)
        frequency[result.entity_type] = frequency.get(result.entity_type, 0) + 1
    found: dict[str, Finding] = {}
    holding: dict[str, set[int]] = {}
    dominant = frozenset(kind for kind, count in frequency.items() if count * 2 >= len(parts))
    for index, candidates in sorted(by_value.items()):
        for result in _without_overlaps(candidates, frequency, dominant):
            row = rows[index]
            seen = holding.setdefault(result.entity_type, set())
            finding = found.setdefault(result.entity_type, Finding(result.entity_type))
            if row not in seen:
                seen.add(row)
                finding.count += 1
                finding.score_sum += result.score
            finding.max_score = max(finding.max_score, result.score)
            example = mask(text[result.start : result.end])
            if len(finding.examples) < EXAMPLES and example not in finding.examples:
                finding.examples.append(example)
    ordered = sorted(found.values(), key=lambda finding: (-finding.count, finding.entity))
    return ColumnScan(name, len(parts), ordered, holding)


def _without_overlaps(
    results: list[Any], frequency: dict[str, int], dominant: frozenset[str]
) -> list[Any]:
    """The findings of one value, where two overlap only one: of the column's own type
    when it has one (found in half its values or more), else the longer one (``+1
    617-842-4221`` is a phone number, though its last ten digits pass an NHS number's
    checksum), else the more confident one."""
    ranked = sorted(
        results,
        key=lambda result: (
            result.entity_type not in dominant,
            result.start - result.end,
            -result.score,
            -frequency[result.entity_type],
            result.start,
        ),
    )
    kept: list[Any] = []
    for result in ranked:
        if all(result.end <= other.start or other.end <= result.start for other in kept):
            kept.append(result)
    return kept


def shown_names(columns: Sequence[str], analyzer: Analyzer, *, min_score: float) -> list[str]:
    """The columns' names as they may be stored and shown: a name that is personal data
    itself (the first row of a file without a header) is replaced by its position."""
    found = scan_column("", columns, analyzer, min_score=min_score)
    holding = set().union(*found.rows.values())
    return [
        f"column {index + 1}" if index in holding else name for index, name in enumerate(columns)
    ]


def mask(value: str) -> str:
    """A value with every letter and digit hidden but its first and last:
    ``jane@example.com`` is ``j•••@•••••••.••m``."""
    hidden = [MASK if char.isalnum() else char for char in value]
    if len(value) > 2:
        hidden[0], hidden[-1] = value[0], value[-1]
    return "".join(hidden)


def suggested_classification(scans: Sequence[ColumnScan]) -> str | None:
    """``pii`` when the sample holds personal data; None when nothing was found (a sample
    without findings does not show the data holds none)."""
    return "pii" if any(scan.findings for scan in scans) else None
