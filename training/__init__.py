"""Model evaluation: patient-grouped cross-validation, metrics, calibration and report plots.

Import from the modules (``training.cv``, ``training.metrics``, ``training.calibration``,
``training.plots``); nothing is re-exported here so that importing one does not pull in
matplotlib or lifelines for the others.
"""
