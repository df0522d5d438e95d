"""Report figures render to PNG with labelled axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cohort.vocabulary import LANDMARK_DAY
from training.calibration import calibration_table, net_benefit, smooth_calibration
from training.plots import (
    plot_auc_by_landmark,
    plot_calibration,
    plot_decision_curve,
    plot_km_by_group,
    png_bytes,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def saved(fig: Figure, path: Path) -> bytes:
    fig.savefig(path, dpi=60)
    return path.read_bytes()


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def auc_curve(shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            LANDMARK_DAY: [365.0, 730.0, 1095.0],
            "auc": np.array([0.9, 0.85, 0.8]) - shift,
            "auc_low": np.array([0.85, 0.8, 0.7]) - shift,
            "auc_high": np.array([0.95, 0.9, 0.88]) - shift,
        }
    )


def test_the_auc_plot_draws_one_line_per_model_with_labelled_axes(tmp_path: Path) -> None:
    fig = plot_auc_by_landmark(
        {"landmark Cox": auc_curve(), "baseline Cox": auc_curve(0.1)}, horizon_days=1095
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Landmark (days since index)"
    assert ax.get_ylabel() == "Time-dependent AUC (event within 1095 days)"
    assert legend_labels(ax) == ["landmark Cox", "baseline Cox"]
    assert ax.get_ylim()[0] <= 0.6 - 0.05  # the lowest band stays in view
    assert saved(fig, tmp_path / "auc.png").startswith(PNG_MAGIC)


def test_the_calibration_plot_shows_groups_smooth_curve_and_diagonal(
    tmp_path: Path, calibrated: pd.DataFrame
) -> None:
    grouped = calibration_table(calibrated, "risk", 365)
    smooth = smooth_calibration(calibrated, "risk", 365)
    fig = plot_calibration(grouped, smooth, horizon_days=365)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Predicted risk within 365 days (probability)"
    assert ax.get_ylabel() == "Observed risk within 365 days (Kaplan–Meier)"
    labels = legend_labels(ax)
    assert labels == ["Perfect calibration", "Smooth (Cox, spline)", "Groups (KM, 95% CI)"]
    assert saved(fig, tmp_path / "calibration.png").startswith(PNG_MAGIC)


def test_the_decision_curve_shows_the_models_and_both_reference_strategies(
    tmp_path: Path, calibrated: pd.DataFrame
) -> None:
    curve = net_benefit(calibrated, "risk", 365)
    fig = plot_decision_curve({"true model": curve, "flat": curve.assign(net_benefit=0.01)})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Threshold probability"
    assert ax.get_ylabel() == "Net benefit (true positives per patient)"
    assert legend_labels(ax) == [
        "Treat all",
        "Treat none",
        "true model",
        "flat",
    ]
    assert saved(fig, tmp_path / "dca.png").startswith(PNG_MAGIC)


def test_the_kaplan_meier_plot_has_one_curve_per_group_and_an_at_risk_table(
    tmp_path: Path, calibrated: pd.DataFrame
) -> None:
    table = calibrated.assign(ctc_positive=(calibrated["lp"] > 0).astype(int))
    fig = plot_km_by_group(
        table, "ctc_positive", time_col="residual_time_full", event_col="event_full"
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Days since landmark"
    assert ax.get_ylabel() == "Event-free probability"
    assert ax.get_title() == "Kaplan–Meier by ctc_positive"
    assert legend_labels(ax) == [
        "ctc_positive = 0",
        "ctc_positive = 1",
    ]
    at_risk_labels = " ".join(t.get_text() for t in fig.axes[1].get_xticklabels())
    assert "At risk" in at_risk_labels
    assert saved(fig, tmp_path / "km.png").startswith(PNG_MAGIC)


def test_figures_stay_out_of_pyplots_figure_manager(calibrated: pd.DataFrame) -> None:
    before = plt.get_fignums()
    plot_auc_by_landmark(auc_curve())
    plot_km_by_group(calibrated.assign(g=calibrated["lp"] > 0), "g")
    assert plt.get_fignums() == before


def test_a_curve_without_the_needed_columns_is_refused() -> None:
    with pytest.raises(ValueError, match=r"curve 'm' lacks column\(s\) \['auc'\]"):
        plot_auc_by_landmark({"m": pd.DataFrame({LANDMARK_DAY: [1.0]})})
    with pytest.raises(
        ValueError, match=r"grouped lacks column\(s\) \['observed_high', 'observed_low'\]"
    ):
        plot_calibration(pd.DataFrame({"predicted": [0.1], "observed": [0.1]}))
    with pytest.raises(ValueError, match=r"table lacks column\(s\) \['ctc'\]"):
        plot_km_by_group(pd.DataFrame({"residual_time": [1.0], "event": [1]}), "ctc")


def test_png_bytes_are_the_file_savefig_writes(tmp_path: Path) -> None:
    fig = plot_auc_by_landmark(auc_curve())
    fig.savefig(tmp_path / "auc.png")
    assert png_bytes(fig) == (tmp_path / "auc.png").read_bytes()
