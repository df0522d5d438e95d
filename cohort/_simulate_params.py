"""Parameters of the cohort simulator: every clinical figure, named, with its source.

Figures marked ``[unverified]`` or ``[assumption]`` are not published values; they are
parameters so that an analysis can vary them, never constants buried in the code.
Sources refer to rows of shared/clinical-facts.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date

SITES = ("site-a", "site-b", "site-c")
ETIOLOGIES = ("HBV", "HCV", "alcohol", "MASLD", "other")
MODALITY_ORDER = ("CT", "MRI", "US", "CEUS")


@dataclass(frozen=True)
class SimulationParams:
    """Knobs of the latent process and of how hospitals observe it.

    Burden is measured in units of the imaging detection threshold (a ≈1 cm lesion, burden 1),
    so a doubling time and a number of doublings say when a recurrence becomes visible.
    """

    # --- accrual and follow-up [assumption: a resection series 2014-2020, data cut end 2024]
    accrual_start: str = "2014-01-01"
    accrual_end: str = "2020-12-31"
    data_cut: str = "2024-12-31"
    site_weights: tuple[float, float, float] = (0.45, 0.30, 0.25)  # [assumption]

    # --- baseline covariates [assumption: typical East-Asian resection cohorts]
    age_mean: float = 57.0
    age_sd: float = 10.0
    male_prob: float = 0.82
    etiology_probs: tuple[float, float, float, float, float] = (0.62, 0.10, 0.10, 0.10, 0.08)
    cirrhosis_prob: float = 0.60
    child_pugh_b_prob: float = 0.07
    tumor_size_median_cm: float = 4.5
    tumor_size_sigma: float = 0.55  # log scale
    multiple_tumours_prob: float = 0.20
    mvi_intercept_logit: float = -1.6  # MVI ≈ 30%, more frequent in large tumours
    mvi_per_log_size: float = 1.0
    mvi_missing_prob: float = 0.06  # pathology report without MVI [assumption]
    child_pugh_missing_prob: float = 0.04  # [assumption]

    # --- who has residual disease: predictors of early recurrence (Yan 2023); odds ratios
    # are [unverified] magnitudes, the intercept is tuned to ≈39% recurrence at 2 years
    residual_intercept_logit: float = -1.35
    residual_or_afp_over_400: float = 2.0
    residual_or_size_over_5cm: float = 1.8
    residual_or_multiple: float = 1.8
    residual_or_mvi: float = 2.2
    residual_or_per_sd_shedding: float = 1.6  # CTC-positive RFS HR 3.0 (Cui 2020)

    # --- growth: tumour volume doubling time median 86 d, range 11-851 (An 2015), log-normal
    doubling_time_median_days: float = 86.0
    doubling_time_sigma: float = 0.85  # [inferred: range 11-851 ≈ ±2.4 SD]
    doubling_time_min_days: float = 11.0
    doubling_time_max_days: float = 851.0
    residual_doublings_median: float = 1.5  # doublings from resection to visible [assumption]
    residual_doublings_sigma: float = 0.6
    # de novo (multicentric) tumours keep recurrence rising after 2 years: no plateau,
    # 60% at 5 and 71% at 10 years (Kim/Sinn 2020)
    # visible-day hazard among patients without residual disease, falling after 5 years as in
    # Kim/Sinn 2020 (+20% from 2 to 5 years, +11% from 5 to 10) [assumption, tuned]
    de_novo_lag_days: float = 420.0
    de_novo_hazard_per_year: float = 0.14
    de_novo_hazard_change_day: float = 1826.0
    de_novo_late_hazard_per_year: float = 0.07
    de_novo_doublings: float = 10.0  # burden at onset = 2**-10 of visible [assumption]
    max_doublings_past_visible: float = 10.0  # a 10 cm tumour: no one goes further unseen

    # --- deaths and censoring [assumption]
    death_hazard_per_year: float = 0.01
    death_hr_child_pugh_b: float = 3.0
    death_hr_per_decade: float = 1.5
    death_after_visible_hazard_per_year: float = 0.20
    loss_to_followup_per_year: float = 0.03

    # --- visits: imaging every 3 months for 2 years then 6-monthly (AASLD/EASL)
    draw_schedule_days: tuple[float, ...] = (30, 60, 90, 180, 270, 360, 450, 540, 630, 720)
    preop_draw_day: float = -7.0  # pre-operative baseline (Sun 2013, Zhou 2020)
    visit_jitter_sd_days: float = 5.0
    visit_jitter_max_days: float = 14.0
    visit_late_prob: float = 0.05
    visit_late_max_days: float = 45.0
    scan_missed_prob: float = 0.07
    draw_missed_prob: float = 0.08
    marker_missed_prob: float = 0.04  # one assay not run on a draw
    preop_draw_missed_prob: float = 0.03

    # --- imaging [unverified sensitivities for a ≈1 cm lesion]
    sensitivity_ct: float = 0.85
    sensitivity_mri: float = 0.92
    sensitivity_us: float = 0.60
    sensitivity_ceus: float = 0.80
    # per site: probabilities of CT, MRI, US, CEUS [assumption]
    modality_probs_site_a: tuple[float, float, float, float] = (0.6, 0.4, 0.0, 0.0)
    modality_probs_site_b: tuple[float, float, float, float] = (0.3, 0.7, 0.0, 0.0)
    modality_probs_site_c: tuple[float, float, float, float] = (0.3, 0.0, 0.5, 0.2)
    indeterminate_from_burden: float = 0.25  # sub-centimetre lesions can look indeterminate
    indeterminate_small_prob: float = 0.30
    indeterminate_benign_prob: float = 0.03  # benign nodules, perfusion defects

    # --- CTC (CellSearch, per 7.5 mL): pre-op 41.5% ≥2, 67% ≥1, mean 2.6; 28% ≥2 at 1 month
    # (Sun 2013); overdispersed Poisson-lognormal counts [unverified]
    ctc_positive_at: float = 2.0  # Sun 2013
    ctc_shedding_sigma: float = 1.0  # between-patient log-sd [unverified]
    ctc_draw_sigma: float = 0.5  # within-patient log-sd per draw [unverified]
    ctc_preop_median: float = 1.2  # expected count for a 4.5 cm primary, tuned to Sun 2013
    ctc_preop_size_power: float = 1.0
    ctc_preop_mvi_ratio: float = 1.8
    ctc_background: float = 0.21  # expected count without disease [unverified]
    ctc_at_visible: float = 6.0  # initial slope: count per unit burden; no published lead time
    # counts saturate: CellSearch reports at most a few dozen per 7.5 mL (range 1-34, Sun 2013)
    ctc_saturation: float = 15.0  # [unverified; keeps the one-month mean near Sun 2013]
    # CanPatrol-style subtype shares (epithelial, mixed, mesenchymal) [unverified]
    ctc_subtypes_background: tuple[float, float, float] = (0.6, 0.3, 0.1)
    ctc_subtypes_tumour: tuple[float, float, float] = (0.3, 0.4, 0.3)

    # --- AFP: ≈60% of HCC secrete (Hsieh 2010); half-life ≈5 d (StatPearls)
    afp_secretor_prob: float = 0.60
    afp_upper_normal: float = 20.0  # ng/mL (Shirabe 1997)
    afp_positive_at: float = 400.0  # ng/mL (Zhang 2020)
    afp_half_life_days: float = 5.0
    afp_background_median: float = 3.5  # ng/mL [assumption]
    afp_background_sigma: float = 0.5
    afp_draw_sigma: float = 0.15
    afp_at_visible_median: float = 42.0  # ng/mL per unit burden [unverified]
    afp_at_visible_sigma: float = 1.0
    afp_primary_size_power: float = 1.5  # primary AFP ∝ diameter**1.5, ≈30% > 400 [assumption]
    afp_detection_limit: float = 2.0  # ng/mL, stored as value 2 qualifier "<"
    afp_upper_limit: float = 100_000.0  # ng/mL, stored with qualifier ">" [assumption]
    afp_flare_prob: float = 0.03  # benign rise on a draw, viral hepatitis only [assumption]
    afp_flare_median_factor: float = 6.0
    afp_ng_per_iu: float = 1.21  # 1 IU/mL ≈ 1.21 ng/mL [unverified, assay-dependent]

    # --- PIVKA-II: cut-off 40 mAU/mL (BioMed Res Int 2020); others [unverified]
    pivka_secretor_prob: float = 0.55
    pivka_positive_at: float = 40.0
    pivka_background_median: float = 20.0
    pivka_background_sigma: float = 0.35
    pivka_draw_sigma: float = 0.15
    pivka_at_visible_median: float = 30.0
    pivka_at_visible_sigma: float = 1.0
    pivka_half_life_days: float = 2.5

    def __post_init__(self) -> None:
        _check_params(self)


# divisors, log arguments and scales: zero would give inf/NaN rather than a cohort
_STRICTLY_POSITIVE = frozenset(
    {
        "doubling_time_median_days",
        "doubling_time_min_days",
        "residual_doublings_median",
        "afp_half_life_days",
        "pivka_half_life_days",
        "afp_at_visible_median",
        "pivka_at_visible_median",
        "afp_background_median",
        "pivka_background_median",
        "tumor_size_median_cm",
        "ctc_at_visible",
        "ctc_saturation",
        "afp_ng_per_iu",
        "afp_flare_median_factor",
        "residual_or_afp_over_400",
        "residual_or_size_over_5cm",
        "residual_or_multiple",
        "residual_or_mvi",
        "residual_or_per_sd_shedding",
        "ctc_preop_mvi_ratio",
        "death_hr_child_pugh_b",
        "death_hr_per_decade",
    }
)


def _check_params(p: SimulationParams) -> None:
    """Probabilities in [0, 1], the rest finite and ≥ 0, weight vectors summing to 1."""
    for f in fields(p):
        value = getattr(p, f.name)
        if isinstance(value, str) or f.name.endswith("_logit") or f.name == "preop_draw_day":
            continue
        values = value if isinstance(value, tuple) else (value,)
        if f.name.endswith("_prob") and not all(0 <= v <= 1 for v in values):
            raise ValueError(f"SimulationParams.{f.name} must be in [0, 1], got {value!r}")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"SimulationParams.{f.name} must be finite and >= 0, got {value!r}")
        if f.name in _STRICTLY_POSITIVE and not value > 0:
            raise ValueError(f"SimulationParams.{f.name} must be > 0, got {value!r}")
        is_weights = f.name.endswith(("_probs", "_weights")) or f.name.startswith("ctc_subtypes")
        if is_weights and not math.isclose(sum(values), 1.0, abs_tol=1e-9):
            raise ValueError(f"SimulationParams.{f.name} must sum to 1, got {value!r}")
    try:
        dates = [date.fromisoformat(d) for d in (p.accrual_start, p.accrual_end, p.data_cut)]
    except ValueError as exc:
        raise ValueError(f"SimulationParams dates must be ISO YYYY-MM-DD: {exc}") from exc
    if not dates[0] <= dates[1] < dates[2]:
        raise ValueError(
            "SimulationParams needs accrual_start <= accrual_end < data_cut, got "
            f"{p.accrual_start!r}, {p.accrual_end!r}, {p.data_cut!r}"
        )
    if not p.ctc_positive_at < p.ctc_saturation:
        raise ValueError(
            f"SimulationParams.ctc_positive_at ({p.ctc_positive_at!r}) must be below "
            f"ctc_saturation ({p.ctc_saturation!r}), else no count ever reaches it"
        )
    if p.preop_draw_day >= 0:
        raise ValueError(f"SimulationParams.preop_draw_day must be < 0, got {p.preop_draw_day!r}")
