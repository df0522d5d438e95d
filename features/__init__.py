"""Time-varying features: landmark tables (scikit-learn transformer) and counting-process tables."""

from features.counting import counting_process_table
from features.landmark import (
    EVENT_FULL,
    RESIDUAL_TIME_FULL,
    LandmarkFeatures,
    LandmarkInput,
    build_landmark_table,
    default_landmarks,
)

__all__ = [
    "EVENT_FULL",
    "RESIDUAL_TIME_FULL",
    "LandmarkFeatures",
    "LandmarkInput",
    "build_landmark_table",
    "counting_process_table",
    "default_landmarks",
]
