"""Marker values on each blood draw, as hospitals report them (private to cohort.simulate).

CTC counts are Poisson-lognormal around ``shedding × (background + ctc_at_visible × burden)``
after resection, and around the primary tumour's expected count before it. AFP and PIVKA-II
are background plus a secretion proportional to burden; the resected primary's share decays
with the marker's half-life. Sites differ in the units they send.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohort._simulate_latent import Population, burden
from cohort._simulate_observe import Draws
from cohort._simulate_params import SimulationParams

# alphabetical, so sorting rows by code sorts them by marker name
MARKER_CODES = ("afp", "ctc_epithelial", "ctc_mesenchymal", "ctc_mixed", "ctc_total", "pivka_ii")
_AFP, _EPI, _MES, _MIX, _TOTAL, _PIVKA = range(6)
UNIT_CODES = ("cells/7.5mL", "cells/5mL", "ng/mL", "IU/mL", "mAU/mL")
_PER_7_5, _PER_5, _NG, _IU, _MAU = range(5)
QUALIFIER_CODES = ("", "<", ">")
_SITE_B, _SITE_C = 1, 2  # site-b counts CanPatrol-style in 5 mL; site-c reports AFP in IU/mL


@dataclass(frozen=True)
class MarkerRows:
    """Long format: one entry per reported value; ``draw`` indexes into ``Draws``."""

    draw: np.ndarray
    marker: np.ndarray
    value: np.ndarray
    unit: np.ndarray
    qualifier: np.ndarray

    @staticmethod
    def concat(parts: list[MarkerRows]) -> MarkerRows:
        return MarkerRows(
            *(
                np.concatenate([getattr(x, f) for x in parts])
                for f in MarkerRows.__dataclass_fields__
            )
        )


def marker_rows(
    rng: np.random.Generator, pop: Population, draws: Draws, p: SimulationParams
) -> MarkerRows:
    """Every marker of every draw, minus the assays not run on a given draw."""
    b = burden(pop, draws.patient, draws.day, p.max_doublings_past_visible)
    site = pop.site[draws.patient]
    parts = [
        _ctc_rows(rng, pop, draws, b, site, p),
        _afp_rows(rng, pop, draws, b, site, p),
        _pivka_rows(rng, pop, draws, b, p),
    ]
    rows = MarkerRows.concat(parts)
    order = np.lexsort((rows.marker, rows.draw))
    return MarkerRows(*(getattr(rows, f)[order] for f in MarkerRows.__dataclass_fields__))


def _run(rng: np.random.Generator, n: int, p: SimulationParams) -> np.ndarray:
    """Whether an assay was run on each draw."""
    return rng.random(n) >= p.marker_missed_prob


def _lognormal_noise(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """Mean-one multiplicative noise, so expected values stay what the model says."""
    return np.exp(rng.normal(-(sigma**2) / 2, sigma, n))


def _ctc_expected(
    pop: Population, draws: Draws, b: np.ndarray, p: SimulationParams
) -> tuple[np.ndarray, np.ndarray]:
    """Expected count per 7.5 mL and the tumour-derived part of it."""
    pt = draws.patient
    primary = (
        p.ctc_preop_median
        * (pop.tumor_size_cm[pt] / p.tumor_size_median_cm) ** p.ctc_preop_size_power
        * p.ctc_preop_mvi_ratio ** pop.mvi[pt]
    )
    raw = np.where(draws.day < 0, primary, p.ctc_at_visible * b) * pop.shedding[pt]
    tumour = ctc_saturate(raw, p.ctc_saturation)
    return tumour + p.ctc_background * pop.shedding[pt], tumour


def ctc_saturate(raw: np.ndarray, ceiling: float) -> np.ndarray:
    """Linear while small, levelling off at ``ceiling``: counts do not grow with burden forever."""
    return ceiling * -np.expm1(-raw / ceiling)


def _ctc_rows(
    rng: np.random.Generator,
    pop: Population,
    draws: Draws,
    b: np.ndarray,
    site: np.ndarray,
    p: SimulationParams,
) -> MarkerRows:
    expected, tumour = _ctc_expected(pop, draws, b, p)
    unit = np.where(site == _SITE_B, _PER_5, _PER_7_5)
    volume = np.where(unit == _PER_5, 5.0, 7.5) / 7.5
    n = len(expected)
    count = rng.poisson(expected * volume * _lognormal_noise(rng, p.ctc_draw_sigma, n))
    run = _run(rng, n, p)
    total = _rows(np.nonzero(run)[0], _TOTAL, count[run], unit[run], 0)
    sub = np.nonzero(run & (site == _SITE_B))[0]
    tumour_share = np.divide(
        tumour[sub], expected[sub], out=np.zeros(len(sub)), where=expected[sub] > 0
    )
    return MarkerRows.concat([total, *_subtype_rows(rng, sub, count[sub], tumour_share, p)])


def _subtype_rows(
    rng: np.random.Generator,
    idx: np.ndarray,
    count: np.ndarray,
    tumour_share: np.ndarray,
    p: SimulationParams,
) -> list[MarkerRows]:
    """Split each count into epithelial / mixed / mesenchymal; tumour CTCs are more mesenchymal."""
    bg, tu = np.array(p.ctc_subtypes_background), np.array(p.ctc_subtypes_tumour)
    probs = tumour_share[:, None] * tu + (1 - tumour_share[:, None]) * bg
    epi = rng.binomial(count, probs[:, 0])
    rest_p = np.divide(probs[:, 1], 1 - probs[:, 0], out=np.zeros(len(idx)), where=probs[:, 0] < 1)
    mixed = rng.binomial(count - epi, np.clip(rest_p, 0, 1))
    mes = count - epi - mixed
    return [_rows(idx, code, c, _PER_5, 0) for code, c in ((_EPI, epi), (_MIX, mixed), (_MES, mes))]


def _secreted(
    pop: Population, draws: Draws, b: np.ndarray, rate: np.ndarray, half_life: float
) -> np.ndarray:
    """Secretion ∝ recurrent burden plus the resected primary's share, cleared by half-life."""
    primary = pop.primary_burden[draws.patient] * np.exp2(-np.maximum(draws.day, 0) / half_life)
    return rate[draws.patient] * (b + primary)


def _afp_rows(
    rng: np.random.Generator,
    pop: Population,
    draws: Draws,
    b: np.ndarray,
    site: np.ndarray,
    p: SimulationParams,
) -> MarkerRows:
    n = len(draws.patient)
    viral = pop.etiology[draws.patient] <= 1  # HBV, HCV: hepatitis flares raise AFP
    flare = np.where(
        viral & (rng.random(n) < p.afp_flare_prob),
        np.exp(rng.normal(np.log(p.afp_flare_median_factor), 0.7, n)),
        1.0,
    )
    background = pop.afp_background[draws.patient] * flare
    ng = (background + _secreted(pop, draws, b, pop.afp_rate, p.afp_half_life_days)) * (
        _lognormal_noise(rng, p.afp_draw_sigma, n)
    )
    iu = site == _SITE_C
    factor = np.where(iu, 1 / p.afp_ng_per_iu, 1.0)
    decimals = np.where(iu, 100.0, 10.0)
    low = np.round(p.afp_detection_limit * factor * decimals) / decimals
    high = np.round(p.afp_upper_limit * factor * decimals) / decimals
    value = np.round(ng * factor * decimals) / decimals
    qualifier = np.select([value < low, value > high], [1, 2], 0)
    value = np.clip(value, low, high)
    run = _run(rng, n, p)
    unit = np.where(iu, _IU, _NG)
    return _rows(np.nonzero(run)[0], _AFP, value[run], unit[run], qualifier[run])


def _pivka_rows(
    rng: np.random.Generator, pop: Population, draws: Draws, b: np.ndarray, p: SimulationParams
) -> MarkerRows:
    n = len(draws.patient)
    secreted = _secreted(pop, draws, b, pop.pivka_rate, p.pivka_half_life_days)
    value = (pop.pivka_background[draws.patient] + secreted) * _lognormal_noise(
        rng, p.pivka_draw_sigma, n
    )
    run = _run(rng, n, p)
    return _rows(np.nonzero(run)[0], _PIVKA, np.round(value[run]), _MAU, 0)


def _rows(
    draw: np.ndarray,
    marker: int,
    value: np.ndarray,
    unit: np.ndarray | int,
    qualifier: np.ndarray | int,
) -> MarkerRows:
    n = len(draw)
    return MarkerRows(
        draw=draw.astype(np.int64),
        marker=np.full(n, marker, dtype=np.int8),
        value=np.asarray(value, dtype=float),
        unit=np.broadcast_to(np.asarray(unit, dtype=np.int8), (n,)).copy(),
        qualifier=np.broadcast_to(np.asarray(qualifier, dtype=np.int8), (n,)).copy(),
    )
