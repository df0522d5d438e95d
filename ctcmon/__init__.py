"""ctcmon: recurrence monitoring after curative treatment of liver cancer from serial blood markers."""

__version__ = "0.1.0"
