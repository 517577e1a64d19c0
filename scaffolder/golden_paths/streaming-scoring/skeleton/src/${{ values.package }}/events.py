"""The events the service scores, read from their text: a JSON object with an ``id`` and the
model's ``features``, for example ``{"id": "t-1", "features": {"amount": 12.5, ...}}``.
An event that cannot be scored is refused with the reason, for the dead-letter queue."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NUMBERS = {"double", "float", "long", "integer"}
WHOLE_NUMBERS = {"long", "integer"}


class MalformedEvent(ValueError):
    """An event no retry can score; the message says why."""


@dataclass(frozen=True)
class Event:
    id: str | int
    features: dict[str, Any]  # typed as the model's signature asks


def parse_event(body: str, features: Mapping[str, str], required: Sequence[str]) -> Event:
    """The event in ``body``, its features checked against the model's ``features`` (name:
    signature type) and typed as they say; MalformedEvent if it cannot be scored."""
    try:
        record = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedEvent(f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise MalformedEvent(f"not a JSON object but a {type(record).__name__}")
    event_id = record.get("id")
    if isinstance(event_id, bool) or not isinstance(event_id, str | int) or event_id == "":
        raise MalformedEvent(f"'id' is {event_id!r}: expected a string or an integer")
    given = record.get("features")
    if not isinstance(given, dict):
        raise MalformedEvent("no 'features' object")
    missing = [name for name in required if name not in given]
    if missing:
        raise MalformedEvent(f"missing feature {', '.join(repr(name) for name in missing)}")
    typed = {
        name: typed_value(name, given[name], kind)
        for name, kind in features.items()
        if name in given
    }
    return Event(event_id, typed)


def typed_value(name: str, value: Any, kind: str) -> Any:
    """``value`` as the signature's ``kind`` of column holds it: JSON has one kind of number,
    and the model refuses 3.0 for a ``long`` column or 3 for a ``double`` one."""
    if kind in NUMBERS:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value):
            raise MalformedEvent(f"feature {name!r} is {value!r}: expected a number")
        if kind not in WHOLE_NUMBERS:
            return float(value)
        if not float(value).is_integer():
            raise MalformedEvent(f"feature {name!r} is {value!r}: expected a whole number")
        return int(value)
    if kind == "string" and not isinstance(value, str):
        raise MalformedEvent(f"feature {name!r} is {value!r}: expected a string")
    if kind == "boolean" and not isinstance(value, bool):
        raise MalformedEvent(f"feature {name!r} is {value!r}: expected true or false")
    return value
