"""ctcmon cohort package."""
