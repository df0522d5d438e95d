"""ctcmon: recurrence monitoring after curative treatment of liver cancer from serial blood markers."""

__version__ = "0.1.0"

# OpenMP threads that busy-wait (the default) starve everything else on a small machine:
# XGBoost fits were 10x slower on 2 busy cores. Must be set before libgomp loads.
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
