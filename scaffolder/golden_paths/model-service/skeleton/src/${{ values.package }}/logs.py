"""Log records as JSON lines, one object a line, which log collectors read without parsing
rules: the access log, the service's own messages and uvicorn's (see logging.json)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# What every log record has; anything else on a record came in through ``extra=`` and is
# written out as a field. uvicorn adds a coloured copy of its messages, left out too.
_RECORD_ATTRIBUTES = {
    *vars(logging.makeLogRecord({})),
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Writes a record as JSON: time, level, logger, message, its extra fields, and the
    exception's traceback if it has one."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
