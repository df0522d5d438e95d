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
from numba import njit


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
    """Several models' trees packed together, and where each model's nodes start.

    A walk is bound by memory, not arithmetic (the packed forests of a stack's interval are
    tens of MB, read a node at a time between other work), so each node is one 16-byte
    record: children and feature as int32 and the threshold as the float32 it amounts to —
    for a float32 x, ``x <= t`` holds exactly when ``x <= t32``, t32 the largest float32 not
    above t. ``plans``: for each tuple of models asked together, their roots end to end
    and where each model's trees start among them."""

    trees: FlatTrees
    start: dict[int, int]  # id(model) -> its first node
    models: tuple[Any, ...]  # held, so the ids above stay theirs
    nodes: np.ndarray  # one _NODE record a node
    missing_left: np.ndarray  # per node (empty: a missing x goes right everywhere)
    plans: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]]
    node_values: list[np.ndarray]  # ``values``, once made

    @classmethod
    def of(cls, trees: FlatTrees, start: dict[int, int], models: tuple[Any, ...]) -> _Joint:
        if len(trees.left) >= 2**31:
            raise ValueError(f"{len(trees.left):,} tree nodes do not fit 32-bit node numbers")
        nodes = np.empty(len(trees.left), dtype=_NODE)
        nodes["left"], nodes["right"], nodes["feature"] = trees.left, trees.right, trees.feature
        nodes["threshold"] = _float32_at_or_below(trees.threshold)
        missing = trees.missing_left
        return cls(
            trees,
            start,
            models,
            nodes,
            np.zeros(0, dtype=bool) if missing is None else missing.astype(bool),
            {},
            [],
        )

    def values(self, value: Callable[[Any], np.ndarray]) -> np.ndarray:
        """``value(model)`` (a float32 per node) of every model packed here, end to end, as
        the nodes are: made once."""
        held = self.node_values
        if not held:
            held.append(np.concatenate([value(m) for m in self.models]).astype(np.float32))
        return held[0]

    def plan(
        self, models: Sequence[Any], flat: Callable[[Any], FlatTrees]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``models``' roots (global node numbers) end to end, each model's first tree among
        them (and the end), and each model's first node: made once per tuple of models."""
        key = tuple(id(m) for m in models)
        plan = self.plans.get(key)
        if plan is None:
            own = [flat(m) for m in models]
            starts = np.array([self.start[id(m)] for m in models], dtype=np.intp)
            roots = np.concatenate([t.roots + s for t, s in zip(own, starts, strict=True)])
            trees = np.r_[0, np.cumsum([len(t.roots) for t in own])].astype(np.intp)
            plan = self.plans[key] = (roots.astype(np.intp), trees, starts)
        return plan


_NODE = np.dtype(
    [("left", np.int32), ("right", np.int32), ("feature", np.int32), ("threshold", np.float32)]
)


def _float32_at_or_below(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 ≤ each threshold (a float32 x is ≤ one exactly when ≤ the other)."""
    t32 = threshold.astype(np.float32)
    above = t32.astype(float) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def leaves_together(
    models: Sequence[Any], flat: Callable[[Any], FlatTrees], inputs: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Each model's leaf (its own node number) for each row of its input and each tree,
    rows first: ``models[k]``'s trees (``flat(model)``) read ``inputs[k]`` as float32,
    the test scikit-learn's and XGBoost's trees make (``x <= threshold`` goes left; a
    missing x its node's way, right where a node has none). Every input has the same rows.
    """
    joint = _joint(models, flat)
    roots, trees, starts = joint.plan(models, flat)
    x, n, same = _rows(inputs)
    leaf = _walk(joint.nodes, joint.missing_left, x, roots, trees, starts, n, same)
    ends = n * trees
    return [leaf[ends[k] : ends[k + 1]] for k in range(len(models))]


def leaf_sums_together(
    models: Sequence[Any],
    flat: Callable[[Any], FlatTrees],
    value: Callable[[Any], np.ndarray],
    base: Sequence[np.float32],
    inputs: Sequence[np.ndarray],
) -> list[np.ndarray]:
    """For each model and row, ``base[k]`` plus its trees' leaf values (``value(model)``,
    float32 per node) added in float32 in tree order — XGBoost's margin — walked as
    ``leaves_together`` walks, without the leaves leaving the compiled loop."""
    joint = _joint(models, flat)
    roots, trees, _ = joint.plan(models, flat)
    x, n, same = _rows(inputs)
    values = joint.values(value)
    bases = np.asarray(base, dtype=np.float32)
    sums = _walk_sums(joint.nodes, joint.missing_left, x, roots, trees, n, same, values, bases)
    return [np.asarray(row, dtype=float) for row in sums]


def _rows(inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, int, bool]:
    """The inputs stacked as one float32 matrix (just the first when every model reads the
    same array), the rows of each, and whether they were the same."""
    n = len(inputs[0])
    same = all(a is inputs[0] for a in inputs)  # one input for every model (the boosters)
    parts = [inputs[0]] if same else list(inputs)
    x = np.zeros((len(parts) * n, max(a.shape[1] for a in parts)), dtype=np.float32)
    for k, a in enumerate(parts):  # widths may differ (a forest's missing indicators)
        x[k * n : (k + 1) * n, : a.shape[1]] = a
    return x, n, same


@njit(cache=True, nogil=True, inline="always")
def _leaf(
    nodes: np.ndarray, missing_left: np.ndarray, x: np.ndarray, r: int, node: int
) -> int:  # pragma: no cover  (compiled by numba; tested through leaves_together)
    """The leaf row ``r`` of ``x`` reaches from ``node``."""
    has_missing = len(missing_left) > 0
    while nodes[node].left >= 0:
        value = x[r, nodes[node].feature]
        if value <= nodes[node].threshold or (
            has_missing and missing_left[node] and value != value
        ):
            node = nodes[node].left
        else:
            node = nodes[node].right
    return node


@njit(cache=True, nogil=True)
def _walk(
    nodes: np.ndarray,
    missing_left: np.ndarray,
    x: np.ndarray,
    roots: np.ndarray,
    trees: np.ndarray,
    starts: np.ndarray,
    n: int,
    same: bool,
) -> np.ndarray:  # pragma: no cover  (compiled by numba; tested through leaves_together)
    """Each model's leaves, its own node numbers, model by model, rows first: a walker's
    path is a compiled loop (numba), not one numpy call per level — a stack's interval walks
    1,000 forest trees of up to 40 levels on each request. Model ``k``'s trees are
    ``roots[trees[k]:trees[k + 1]]`` and read row ``i`` (``same``) or ``k·n + i`` of ``x``."""
    out = np.empty(n * trees[-1], dtype=np.intp)
    at = 0
    for k in range(len(starts)):
        for i in range(n):
            r = i if same else k * n + i
            for j in range(trees[k], trees[k + 1]):
                out[at] = _leaf(nodes, missing_left, x, r, roots[j]) - starts[k]
                at += 1
    return out


@njit(cache=True, nogil=True)
def _walk_sums(
    nodes: np.ndarray,
    missing_left: np.ndarray,
    x: np.ndarray,
    roots: np.ndarray,
    trees: np.ndarray,
    n: int,
    same: bool,
    values: np.ndarray,
    bases: np.ndarray,
) -> np.ndarray:  # pragma: no cover  (compiled by numba; tested through leaf_sums_together)
    """``_walk``'s leaves' values summed per model and row in float32, tree by tree."""
    out = np.empty((len(bases), n), dtype=np.float32)
    for k in range(len(bases)):
        for i in range(n):
            r = i if same else k * n + i
            total = bases[k]
            for j in range(trees[k], trees[k + 1]):
                total += values[_leaf(nodes, missing_left, x, r, roots[j])]
            out[k, i] = total
    return out


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
    joint = _Joint.of(
        trees, {id(m): s for m, s in zip(together, starts, strict=True)}, tuple(together)
    )
    for m in together:
        m.__dict__.setdefault(Cached._CACHE, {})[_JOINT] = joint
    return joint


_JOINT = "joint_trees"
