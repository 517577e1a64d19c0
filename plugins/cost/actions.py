"""The policy actions of cost chargeback."""

from portal import Action

REPORT_READ = Action("cost.report.read", "See what teams, projects and models cost, and budgets")
BUDGET_UPDATE = Action("cost.budget.update", "Set a team's monthly budget")
BUDGET_OVERRIDE = Action(
    "cost.budget.override", "Let a team train past its budget for the rest of the month"
)
USAGE_COLLECT = Action(
    "cost.usage.collect", "Read usage from its sources again for a range of days"
)

COST_ACTIONS = [REPORT_READ, BUDGET_UPDATE, BUDGET_OVERRIDE, USAGE_COLLECT]
