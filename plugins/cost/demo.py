"""Demo usage for ``paved up --demo``: 90 days of training, serving and storage of the demo
catalog's teams, and budgets, one of them past its 80% alert. Made up, and labelled as such
(source ``demo``): collections never replace it."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlmodel import Session

from plugins.cost.models import Budget, SourceState, UsageRow
from plugins.cost.service import raise_alerts, spent_by_team, this_month
from portal.db import utcnow
from portal.settings import Settings

SOURCE = "demo"
DAYS = 90
DEMO_ACTOR = "demo"
# Team, project, model, and how busy each is: (GPU-hours a day, replicas, requests a day).
WORKLOADS = [
    ("fraud", "fraud-training-pipeline", "fraud-scorer", (6.0, 3, 400_000)),
    ("fraud", "fraud-scoring-service", "fraud-graph-scorer", (2.0, 2, 120_000)),
    ("churn", "churn-training-pipeline", "churn-predictor", (3.0, 2, 40_000)),
    ("search-ranking", "search-service", "search-ranker", (8.0, 4, 900_000)),
    ("platform", "demand-forecast-pipeline", "product-embeddings", (1.0, 1, 5_000)),
]
# Budgets per month; fraud's this month is set so that it has just passed 80%.
BUDGETS = {"fraud": 2500.0, "churn": 1200.0, "search-ranking": 4000.0}
FRAUD_SHARE = 0.86


def load_demo(session: Session, settings: Settings) -> None:
    """Add the demo usage and budgets in the caller's transaction."""
    generator = random.Random(7)  # noqa: S311  (made-up figures, the same each time)
    today = utcnow().date()
    start = today - timedelta(days=DAYS - 1)
    for offset in range(DAYS):
        day = start + timedelta(days=offset)
        weekday = 0.6 if day.weekday() >= 5 else 1.0
        for team, project, model, (gpu, replicas, requests) in WORKLOADS:
            wobble = weekday * generator.uniform(0.7, 1.3)
            figures = {
                "gpu_hours": gpu * wobble,
                "cpu_hours": 24 * gpu * wobble,
                "memory_gb_hours": 64 * gpu * wobble,
                "replica_hours": 24.0 * replicas,
                "thousand_requests": requests * wobble / 1000,
                "storage_gb_months": 40 * replicas / 30,
            }
            for metric, quantity in figures.items():
                session.add(
                    UsageRow(
                        source=SOURCE,
                        day=day,
                        team=f"group:default/{team}",
                        project=f"component:default/{project}",
                        model=model,
                        metric=metric,
                        quantity=round(quantity, 4),
                    )
                )
    session.add(
        SourceState(
            name=SOURCE,
            collected_from=start,
            collected_through=today,
            collected_at=utcnow(),
            rows=DAYS * len(WORKLOADS) * 6,
        )
    )
    for team, amount in BUDGETS.items():
        session.add(
            Budget(team=f"group:default/{team}", month="*", amount=amount, updated_by=DEMO_ACTOR)
        )
    session.flush()
    month = this_month()
    fraud = "group:default/fraud"
    spent = spent_by_team(session, month, settings.cost.prices, [fraud]).get(fraud, 0.0)
    if spent > 0:  # whatever the day of the month, show the 80% alert
        session.add(
            Budget(
                team=fraud, month=month, amount=round(spent / FRAUD_SHARE), updated_by=DEMO_ACTOR
            )
        )
        session.flush()
    raise_alerts(session, [month], settings)
