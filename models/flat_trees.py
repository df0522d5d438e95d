"""Fitted trees as flat arrays, walked together: the service's one-row calls.

Asked for one row, a forest of 200 trees or an XGBoost booster of 300 costs mostly its
per-call and per-tree overhead, not the walk. Trees packed end to end (children as global
node numbers) are walked together, one level per numpy step, only the trees not yet at a
leaf moving on; and several models' trees packed together (a stack's fold models, asked
for its risk interval) cost one such walk. A model keeps its own arrays; the packing of
several is made on first use and kept on each of them (``Cached``: never pickled).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class Cached:
    """Tables derived from a fitted model, made on first use and never pickled (the model
    does not change once fitted; a packaged model stays as it was)."""

    _CACHE = "_serving_tables"

    def _cached(self, name: str, make: Callable[[], Any]) -> Any:
        tables = self.__dict__.setdefault(self._CACHE, {})
        if name not in tables:
            tables[name] = make()
        return tables[name]

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(super().__getstate__())  # type: ignore[call-overload]
        state.pop(self._CACHE, None)
        return state


@dataclass(frozen=True, eq=False)
class FlatTrees:
    """Trees end to end. A row at node i goes left where ``x[feature[i]] <= threshold[i]``
    (a missing x: where ``missing_left[i]``) and stops at a node whose ``left`` is −1."""

    roots: np.ndarray  # each tree's root
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray | None = None  # None: the input is never missing (imputed)

    @classmethod
    def concat(cls, parts: Sequence[FlatTrees]) -> tuple[FlatTrees, list[int]]:
        """``parts`` end to end, and each part's first node in the whole."""
        starts = np.r_[0, np.cumsum([len(p.left) for p in parts])[:-1]].astype(np.intp)
        if len(parts) == 1:
            return parts[0], [0]

        def child(name: str) -> np.ndarray:
            nodes = [getattr(p, name) for p in parts]
            return np.concatenate(
                [np.where(n < 0, -1, n + s) for n, s in zip(nodes, starts, strict=True)]
            )

        missing = [p.missing_left for p in parts]
        whole = cls(
            np.concatenate([p.roots + s for p, s in zip(parts, starts, strict=True)]),
            child("left"),
            child("right"),
            np.concatenate([p.feature for p in parts]),
            np.concatenate([p.threshold for p in parts]),
            None if any(m is None for m in missing) else np.concatenate(missing),  # type: ignore[arg-type]
        )
        return whole, [int(s) for s in starts]


@dataclass(frozen=True, eq=False)
class _Joint:
    """Several models' trees packed together, and where each model's nodes start."""

    trees: FlatTrees
    start: dict[int, int]  # id(model) -> its first node
    models: tuple[Any, ...]  # held, so the ids above stay theirs


def leaves_together(
    models: Sequence[Any], flat: Callable[[Any], FlatTrees], inputs: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Each model's leaf (its own node number) for each row of its input and each tree,
    rows first: ``models[k]``'s trees (``flat(model)``) read ``inputs[k]`` as float32,
    the test scikit-learn's and XGBoost's trees make. Every input has the same rows.
    """
    joint = _joint(models, flat)
    n = len(inputs[0])
    x = np.zeros((len(models) * n, max(a.shape[1] for a in inputs)))
    for k, a in enumerate(inputs):  # widths may differ (a forest's missing indicators)
        x[k * n : (k + 1) * n, : a.shape[1]] = np.asarray(a, dtype=np.float32)
    own = [flat(m) for m in models]
    starts = [joint.start[id(m)] for m in models]
    node = np.concatenate([np.tile(t.roots + s, n) for t, s in zip(own, starts, strict=True)])
    row = np.concatenate([np.repeat(np.arange(n) + k * n, len(t.roots)) for k, t in enumerate(own)])
    t = joint.trees
    moving = np.flatnonzero(t.left[node] >= 0)
    while len(moving):
        here = node[moving]
        value = x[row[moving], t.feature[here]]
        left = value <= t.threshold[here]
        if t.missing_left is not None:
            left |= np.isnan(value) & t.missing_left[here]
        there = np.where(left, t.left[here], t.right[here])
        node[moving] = there
        moving = moving[t.left[there] >= 0]
    ends = np.cumsum([n * len(o.roots) for o in own])[:-1]
    return [leaf - s for leaf, s in zip(np.split(node, ends), starts, strict=True)]


def _joint(models: Sequence[Any], flat: Callable[[Any], FlatTrees]) -> _Joint:
    """The packing of ``models`` together, kept on each (``Cached``).

    Models asked together that are not yet packed together are packed again with the
    models their last packings held, so the packing grows to the models asked together (a
    stack's fold models: a band that weighs fewer of them walks those only) and each model
    holds one packing, shared with the others in it.
    """
    held = models[0].__dict__.get(Cached._CACHE, {}).get(_JOINT)
    if held is not None and all(id(m) in held.start for m in models):
        return held
    members = {id(m): m for m in models}
    for m in models:
        before = m.__dict__.get(Cached._CACHE, {}).get(_JOINT)
        members |= {id(g): g for g in getattr(before, "models", ())}
    together = list(members.values())
    trees, starts = FlatTrees.concat([flat(m) for m in together])
    joint = _Joint(
        trees, {id(m): s for m, s in zip(together, starts, strict=True)}, tuple(together)
    )
    for m in together:
        m.__dict__.setdefault(Cached._CACHE, {})[_JOINT] = joint
    return joint


_JOINT = "joint_trees"
