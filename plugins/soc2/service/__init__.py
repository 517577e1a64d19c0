"""The SOC 2 plugin's logic: evidence exports and quarterly access reviews."""

from plugins.soc2.service.exports import (
    TASK_KIND,
    gather,
    get_export,
    latest_pack,
    list_collectors,
    list_exports,
    live_evidence,
    open_pack,
    request_export,
    run_export,
)
from plugins.soc2.service.reviews import (
    REVIEW_COLLECTOR,
    Quarter,
    get_review,
    list_reviews,
    review_status,
    submit_review,
    team_members,
)

__all__ = [
    "REVIEW_COLLECTOR",
    "TASK_KIND",
    "Quarter",
    "gather",
    "get_export",
    "get_review",
    "latest_pack",
    "list_collectors",
    "list_exports",
    "list_reviews",
    "live_evidence",
    "open_pack",
    "request_export",
    "review_status",
    "run_export",
    "submit_review",
    "team_members",
]
