"""The sample is fit to train on, and data a model cannot learn from or label is refused
with what is wrong and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from ${{ values.package }}.texts import LABEL, SAMPLE, TEXT, check_texts, load


def test_the_sample_has_enough_texts_for_every_topic() -> None:
    examples = load(SAMPLE)
    counts = examples[LABEL].value_counts()
    assert set(counts.index) == {"account", "billing", "shipping", "technical"}
    assert counts.min() >= 50
    assert examples[TEXT].is_unique


def test_data_without_a_text_column_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("message,label\nI was charged twice,billing\n")
    with pytest.raises(ValueError, match="no 'text' column"):
        load(bad)


def test_empty_texts_are_refused_with_their_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nI was charged twice,billing\n,technical\n   ,account\n")
    with pytest.raises(ValueError, match="empty 'text' on lines 3, 4"):
        load(bad)


def test_data_with_a_single_label_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nI was charged twice,billing\nRefund me,billing\n")
    with pytest.raises(ValueError, match="only the label 'billing'"):
        load(bad)


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        ([], "no texts to label"),
        (["Refund me", "  "], r"empty text: texts\[1\]"),
        ("Refund me", "got one string"),
    ],
)
def test_texts_to_label_are_refused_with_the_reason(texts: list[str], reason: str) -> None:
    with pytest.raises((ValueError, TypeError), match=reason):
        check_texts(texts)
