"""ctcmon serving package."""
