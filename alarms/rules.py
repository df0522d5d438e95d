"""Marker alarm rules as a small expression language, parsed without ``eval``.

Grammar (whitespace is ignored; ``&`` binds tighter than ``|``)::

    rule       := term ("|" term)*
    term       := factor ("&" factor)*
    factor     := "(" rule ")" | comparison | predicate
    comparison := MARKER (">=" | ">" | "<=" | "<") NUMBER
    predicate  := MARKER "_rise"

``MARKER`` is a code declared in the cohort's manifest. Examples: ``ctc_total>=2``,
``afp>20``, ``ctc_total>=2 & afp_rise``, ``(afp>20 | pivka_ii>=40) & ctc_total>=1``.

Rules are evaluated per blood draw in three-valued (Kleene) logic: a comparison on a marker
not measured at that draw is *unknown*, ``unknown & false`` is false, ``unknown | true`` is
true, and a draw whose rule stays unknown is not evaluable (it neither alarms nor breaks a
run of positive draws; see :mod:`alarms.series`). Detection-limit values are
honoured: AFP ``<2`` makes ``afp>20`` false but ``afp>1`` unknown.

``<marker>_rise`` (e.g. ``afp_rise``, ``ctc_total_rise``): the value rose by at least 25%
over the patient's previous measurement of that marker (pre-operative included) *and* by at
least a quarter of the marker's reference level (``upper_normal``, else ``positive_at``,
e.g. 5 ng/mL for AFP with an upper normal of 20), so that noise at low levels (AFP 2 → 3)
is not a rise. Unknown at a patient's first measurement. Doubling is a special case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from cohort.manifest import Manifest
from cohort.vocabulary import CTC_TOTAL

RISE_SUFFIX: Final = "_rise"
RISE_FACTOR: Final = 1.25  # value >= 1.25 × previous value
RISE_FLOOR_SHARE: Final = 0.25  # and value − previous >= 0.25 × the marker's reference level
CELLSEARCH_CUTOFF: Final = 2.0  # CTC per 7.5 mL (Sun, Hepatology 2013)
OPERATORS: Final = (">=", "<=", ">", "<")

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>>=|<=|>|<)|(?P<punct>[()&|]))"
)


# --------------------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Comparison:
    marker: str
    op: str
    value: float

    def text(self) -> str:
        return f"{self.marker}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Rise:
    marker: str

    def text(self) -> str:
        return f"{self.marker}{RISE_SUFFIX}"


@dataclass(frozen=True)
class Both:
    left: Node
    right: Node

    def text(self) -> str:
        return f"{_wrap(self.left, Either)} & {_wrap(self.right, Either)}"


@dataclass(frozen=True)
class Either:
    left: Node
    right: Node

    def text(self) -> str:
        return f"{self.left.text()} | {self.right.text()}"


Node = Comparison | Rise | Both | Either


def _wrap(node: Node, kind: type) -> str:
    return f"({node.text()})" if isinstance(node, kind) else node.text()


@dataclass(frozen=True)
class MarkerRule:
    """A parsed rule: its canonical text, its tree and the markers it reads."""

    source: str
    tree: Node

    @property
    def text(self) -> str:
        return self.tree.text()

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_markers(self.tree)))

    @property
    def single_threshold(self) -> Comparison | None:
        """The comparison when the rule is one ``marker >=/> x`` (the form a sweep can vary)."""
        tree = self.tree
        return tree if isinstance(tree, Comparison) and tree.op in (">=", ">") else None


def _markers(node: Node) -> list[str]:
    if isinstance(node, Comparison | Rise):
        return [node.marker]
    return _markers(node.left) + _markers(node.right)


# --------------------------------------------------------------------------- parsing
def parse_rule(text: str, manifest: Manifest) -> MarkerRule:
    """Parse ``text`` against the manifest's markers; ValueError naming the bad token."""
    if not isinstance(text, str):
        raise TypeError(f"a rule must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("empty rule; expected e.g. 'ctc_total>=2' or 'ctc_total>=2 & afp_rise'")
    parser = _Parser(text, _tokenize(text), manifest)
    return MarkerRule(text, parser.parse())


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            bad = text[pos:].strip()[:1]
            raise ValueError(
                f"unexpected character {bad!r} in rule {text!r}; rules use markers, numbers, "
                f"{', '.join(OPERATORS)}, '&', '|' and parentheses"
            )
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, text: str, tokens: list[tuple[str, str]], manifest: Manifest) -> None:
        self.text, self.tokens, self.pos = text, tokens, 0
        self.markers = sorted(manifest.markers)

    def parse(self) -> Node:
        node = self._rule()
        if self.pos < len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.pos][1]!r}")
        return node

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _next(self, what: str) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            self._fail(f"rule ends early; expected {what}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _rule(self) -> Node:
        node = self._term()
        while self._peek() == "|":
            self.pos += 1
            node = Either(node, self._term())
        return node

    def _term(self) -> Node:
        node = self._factor()
        while self._peek() == "&":
            self.pos += 1
            node = Both(node, self._factor())
        return node

    def _factor(self) -> Node:
        kind, value = self._next("a marker comparison or '('")
        if value == "(":
            node = self._rule()
            if self._next("')'")[1] != ")":
                self._fail("missing ')'")
            return node
        if kind != "name":
            self._fail(f"expected a marker, got {value!r}")
        return self._predicate_or_comparison(value)

    def _predicate_or_comparison(self, name: str) -> Node:
        if name.endswith(RISE_SUFFIX) and name not in self.markers:
            self._check_marker(name.removesuffix(RISE_SUFFIX), name)
            if self._peek() in OPERATORS:
                self._fail(f"{name!r} is a yes/no predicate and takes no comparison")
            return Rise(name.removesuffix(RISE_SUFFIX))
        self._check_marker(name, name)
        kind, op = self._next(f"a comparison after {name!r}, e.g. {name}>=2")
        if kind != "op":
            self._fail(f"expected a comparison ({', '.join(OPERATORS)}) after {name!r}, got {op!r}")
        kind, number = self._next(f"a number after {name}{op}")
        if kind != "number":
            self._fail(f"expected a number after {name}{op}, got {number!r}")
        return Comparison(name, op, float(number))

    def _check_marker(self, marker: str, token: str) -> None:
        if marker not in self.markers:
            derived = [f"{m}{RISE_SUFFIX}" for m in self.markers]
            raise ValueError(
                f"unknown marker {token!r} in rule {self.text!r}; valid markers: {self.markers}; "
                f"derived predicates: {derived}"
            )

    def _fail(self, reason: str) -> None:
        raise ValueError(f"cannot parse rule {self.text!r}: {reason}")


# --------------------------------------------------------------------------- defaults
def default_rules(manifest: Manifest) -> list[str]:
    """``ctc_total>=2`` (CellSearch) first, then each marker's ``positive_at`` and
    ``upper_normal`` cut-offs from the manifest (e.g. ``afp>20``, ``afp>=400``)."""
    rules: list[str] = []
    specs = manifest.markers
    if CTC_TOTAL in specs:
        cut = specs[CTC_TOTAL].positive_at
        rules.append(f"{CTC_TOTAL}>={CELLSEARCH_CUTOFF if cut is None else cut:g}")
    for code in sorted(m for m in specs if m != CTC_TOTAL):
        spec = specs[code]
        if spec.upper_normal is not None:
            rules.append(f"{code}>{spec.upper_normal:g}")
        if spec.positive_at is not None:
            rules.append(f"{code}>={spec.positive_at:g}")
    return rules


def rise_floor(manifest: Manifest, marker: str) -> float:
    """Smallest absolute rise that counts for ``<marker>_rise``."""
    spec = manifest.markers[marker]
    reference = spec.upper_normal if spec.upper_normal is not None else spec.positive_at
    return RISE_FLOOR_SHARE * float(reference or 0.0)


# --------------------------------------------------------------------------- evaluation
Truth = tuple[np.ndarray, np.ndarray]
"""Kleene truth per draw: (surely true, surely false); neither means unknown."""


def evaluate(rule: MarkerRule, draws: pd.DataFrame, manifest: Manifest) -> Truth:
    """Evaluate ``rule`` on a wide draw table (see ``alarms.draw_table``)."""
    return _eval(rule.tree, draws, manifest)


def _eval(node: Node, draws: pd.DataFrame, manifest: Manifest) -> Truth:
    if isinstance(node, Comparison):
        return _compare(node, draws)
    if isinstance(node, Rise):
        return _rise(node.marker, draws, manifest)
    (lt, lf), (rt, rf) = _eval(node.left, draws, manifest), _eval(node.right, draws, manifest)
    if isinstance(node, Both):
        return lt & rt, lf | rf
    return lt | rt, lf & rf


def _compare(node: Comparison, draws: pd.DataFrame) -> Truth:
    """A censored value (``<v`` or ``>v``) is an interval; test the comparison at both ends."""
    if node.marker not in draws.columns:
        none = np.zeros(len(draws), dtype=bool)
        return none, none.copy()
    value = draws[node.marker].to_numpy(dtype=float)
    qualifier = draws[f"{node.marker}__q"].astype("string").fillna("").to_numpy(dtype=object)
    below, above = qualifier == "<", qualifier == ">"
    low = np.where(below, 0.0, np.where(above, np.nextafter(value, np.inf), value))
    high = np.where(below, np.nextafter(value, -np.inf), np.where(above, np.inf, value))
    at_low, at_high = _apply(node.op, low, node.value), _apply(node.op, high, node.value)
    known = np.isfinite(value)
    return known & at_low & at_high, known & ~at_low & ~at_high


def _apply(op: str, x: np.ndarray, cut: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op == ">=":
            return x >= cut
        if op == ">":
            return x > cut
        if op == "<=":
            return x <= cut
        return x < cut


def _rise(marker: str, draws: pd.DataFrame, manifest: Manifest) -> Truth:
    if marker not in draws.columns:
        none = np.zeros(len(draws), dtype=bool)
        return none, none.copy()
    value = draws[marker].to_numpy(dtype=float)
    previous = draws[f"{marker}__prev"].to_numpy(dtype=float)
    known = np.isfinite(value) & np.isfinite(previous)
    with np.errstate(invalid="ignore"):
        rose = (value >= RISE_FACTOR * previous) & (
            value - previous >= rise_floor(manifest, marker)
        )
        rose &= value > previous
    return known & rose, known & ~rose
