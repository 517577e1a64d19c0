"""Cost chargeback: usage of training, serving and storage collected from sources that
plugins contribute, priced with the price sheet, reported by team, project and model, and
budgets per team and month whose overrun stops new training (``input.context.budget``)."""
