"""A scaffolder action templates can use as ``${{ values.name }}:checklist``."""

from __future__ import annotations

from typing import Any

from scaffolder.steps import StepAction, StepContext


def write_checklist(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    """Write a review checklist into the new project."""
    items = given.get("items") or ["tests pass", "model card filled in", "owner on call"]
    path = context.path(given.get("path", "REVIEW.md"), field="input.path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Review checklist\n\n" + "".join(f"- [ ] {item}\n" for item in items))
    context.log(f"wrote a checklist of {len(items)} items to {path.name}")
    return {"path": given.get("path", "REVIEW.md"), "items": len(items)}


CHECKLIST = StepAction(
    id="${{ values.name }}:checklist",
    description="Writes a review checklist into the new project",
    run=write_checklist,
    input_schema={
        "type": "object",
        "properties": {
            "path": {"type": "string", "title": "where to write it, in the workspace"},
            "items": {"type": "array", "items": {"type": "string"}, "title": "the checks"},
        },
    },
    output_schema={
        "type": "object",
        "properties": {"path": {"type": "string"}, "items": {"type": "integer"}},
    },
)
