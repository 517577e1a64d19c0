"""PII scanning speed and accuracy: a generated CSV of 10,000 rows by 10 columns, with
personal data planted in known cells, scanned as a scan task does it (a sample of the rows
read from the file, each column run through Presidio's recognizers).

Planted: e-mail addresses, phone numbers, credit card numbers (passing their checksum),
IBANs (valid check digits), IPv4 addresses and US social security numbers, each alone in a
cell or inside a sentence, in about 6 % of the cells of every column but the row id. The
other cells hold what tables of an ML team hold: amounts, counts, statuses, product codes,
dates and short comments.

Recall: of the planted values in the sampled rows, those found with their type. Precision:
of the findings in the sampled rows, those on a planted cell with its type. Timed: reading
the sample and scanning it (the analyzer is built once per process, and timed apart).

Target: under 10 s with sampling (`--sample-rows`, the default of `pii.sample_rows`), recall
at least 0.95 for every pattern type. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import csv
import random
import string
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from plugins.pii import scanner, tables
from portal.settings import PiiSettings

COLUMNS = [
    "row_id", "amount", "quantity", "status", "sku", "comment", "notes", "reference",
    "channel", "created",
]  # fmt: skip
PATTERN_TYPES = [
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
]  # fmt: skip
FIRST = ["jane", "omar", "li", "maria", "kofi", "anna", "raj", "sven", "lucia", "tom"]
LAST = ["smith", "haddad", "wang", "garcia", "mensah", "novak", "patel", "berg", "rossi"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net"]
AREA_CODES = ["212", "415", "312", "617", "206", "512"]
WORDS = [
    "order", "shipped", "late", "customer", "asked", "about", "renewal", "options",
    "invoice", "paid", "refund", "requested", "warehouse", "delay", "weather", "support",
    "ticket", "closed", "upgrade", "plan", "monthly", "annual", "discount", "applied",
    "survey", "feedback", "positive", "negative", "neutral", "carrier", "tracking",
]  # fmt: skip
STATUSES = ["active", "churned", "trial", "paused", "pending"]
CHANNELS = ["web", "mobile", "partner", "store", "phone-in"]
TARGET_SECONDS = 10.0
TARGET_RECALL = 0.95


def luhn_complete(digits: str) -> str:
    """``digits`` with the check digit that makes the number pass the Luhn test."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return digits + str((10 - total % 10) % 10)


def iban(draws: random.Random) -> str:
    """A German IBAN with valid check digits."""
    bban = "".join(draws.choice(string.digits) for _ in range(18))
    numeric = int(bban + "131400")  # D=13, E=14, then 00
    return f"DE{98 - numeric % 97:02d}{bban}"


def planted_value(kind: str, draws: random.Random) -> str:
    if kind == "EMAIL_ADDRESS":
        name = f"{draws.choice(FIRST)}.{draws.choice(LAST)}{draws.randint(1, 999)}"
        return f"{name}@{draws.choice(DOMAINS)}"
    if kind == "PHONE_NUMBER":
        area, exchange = draws.choice(AREA_CODES), draws.randint(200, 999)
        number = f"{area}-{exchange}-{draws.randint(1000, 9999)}"
        return draws.choice([f"+1 {number}", f"({number[:3]}) {number[4:]}", number])
    if kind == "CREDIT_CARD":
        prefix = draws.choice(["4", "51", "52", "53", "54", "55"])
        body = prefix + "".join(draws.choice(string.digits) for _ in range(15 - len(prefix)))
        card = luhn_complete(body)
        separator = draws.choice([" ", "-", ""])
        return separator.join(card[i : i + 4] for i in range(0, 16, 4))
    if kind == "IBAN_CODE":
        return iban(draws)
    if kind == "IP_ADDRESS":
        return ".".join(str(draws.randint(1, 254)) for _ in range(4))
    if kind == "US_SSN":
        area = draws.choice([n for n in range(1, 900) if n != 666])
        return f"{area:03d}-{draws.randint(1, 99):02d}-{draws.randint(1, 9999):04d}"
    raise ValueError(kind)


def filler(column: str, draws: random.Random) -> str:
    if column == "amount":
        return f"{draws.uniform(1, 5000):.2f}"
    if column == "quantity":
        return str(draws.randint(1, 40))
    if column == "status":
        return draws.choice(STATUSES)
    if column == "sku":
        return f"SKU-{draws.randint(10000, 99999)}"
    if column == "channel":
        return draws.choice(CHANNELS)
    if column == "created":
        return f"2026-{draws.randint(1, 12):02d}-{draws.randint(1, 28):02d}"
    if column == "reference":
        return f"REF{draws.randint(100, 999)}/{draws.choice(string.ascii_uppercase)}"
    return " ".join(draws.choice(WORDS) for _ in range(draws.randint(3, 9)))


def generate(path: Path, rows: int, rate: float, seed: int) -> dict[tuple[int, str], str]:
    """Write the CSV; returns the planted cells: ``(row_id, column): entity type``."""
    draws = random.Random(seed)
    planted: dict[tuple[int, str], str] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row_id in range(rows):
            row = [str(row_id)]
            for column in COLUMNS[1:]:
                if draws.random() < rate:
                    kind = draws.choice(PATTERN_TYPES)
                    value = planted_value(kind, draws)
                    if draws.random() < 0.5:
                        value = f"{draws.choice(WORDS)} {value} {draws.choice(WORDS)}"
                    planted[row_id, column] = kind
                    row.append(value)
                else:
                    row.append(filler(column, draws))
            writer.writerow(row)
    return planted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample-rows", type=int, default=PiiSettings().sample_rows)
    parser.add_argument("--rate", type=float, default=0.06, help="share of cells planted")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ner-model", default=None, help="also find names with this model")
    arguments = parser.parse_args()

    settings = PiiSettings(sample_rows=arguments.sample_rows, ner_model=arguments.ner_model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.csv"
        planted = generate(path, arguments.rows, arguments.rate, arguments.seed)
        print(
            f"{arguments.rows} rows x {len(COLUMNS)} columns, {len(planted)} planted values, "
            f"sample of {arguments.sample_rows} rows"
        )
        started = time.perf_counter()
        analyzer = scanner.analyzer_for(settings)
        built = time.perf_counter() - started
        started = time.perf_counter()
        sample = tables.read_sample(
            [path],
            sample_rows=settings.sample_rows,
            max_rows=settings.max_rows,
            max_file_bytes=settings.max_file_bytes,
        )
        read = time.perf_counter() - started
        found = scanner.scan_columns(
            sample.columns, sample.rows, analyzer, min_score=settings.min_score
        )
        scanned = time.perf_counter() - started
    row_ids = [int(row[0]) for row in sample.rows]
    sampled = set(row_ids)
    expected = {cell: kind for cell, kind in planted.items() if cell[0] in sampled}
    hits: set[tuple[int, str, str]] = set()
    for column in found:
        for entity, rows in column.rows.items():
            hits.update((row_ids[index], column.column, entity) for index in rows)
    true = {(row, column, kind) for (row, column), kind in expected.items()}
    correct = hits & true
    print(f"analyzer built in {built:.2f} s ({len(analyzer.recognizers)} recognizers)")
    print(f"read the sample in {read:.2f} s; read and scanned in {scanned:.2f} s")
    per_type_true = Counter(kind for _, _, kind in true)
    per_type_found = Counter(kind for _, _, kind in correct)
    recalls = {kind: per_type_found[kind] / per_type_true[kind] for kind in PATTERN_TYPES}
    for kind in PATTERN_TYPES:
        print(
            f"  {kind:<14} recall {recalls[kind]:.3f} "
            f"({per_type_found[kind]}/{per_type_true[kind]})"
        )
    recall = len(correct) / len(true) if true else 1.0
    precision = len(correct) / len(hits) if hits else 1.0
    wrong = Counter(entity for _, _, entity in hits - true)
    print(f"recall {recall:.3f}, precision {precision:.3f} on {len(true)} planted values")
    if wrong:
        print("  findings not planted: " + ", ".join(f"{k} {v}" for k, v in wrong.most_common()))
    missed = [
        f"{kind} recall {value:.3f} < {TARGET_RECALL}"
        for kind, value in recalls.items()
        if value < TARGET_RECALL
    ]
    if scanned >= TARGET_SECONDS:
        missed.append(f"scan took {scanned:.2f} s >= {TARGET_SECONDS} s")
    print("targets: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
