"""The min-cost assignment of waiting orders to couriers' free slots, solved exactly without
the geodesic distance of every order-courier pair.

The problem: rows are orders, oldest first; columns are couriers, each with `free` slots;
a pair is allowed when the geodesic (WGS84) distance from the order's pickup to the
courier is at most `reach`. Oldest order first: the orders assigned are taken oldest
first, each when it can have a courier together with those taken before it
(`_oldest_first`). Among the assignments of those orders, the answer has the least total
distance.

Why a subset of pairs is enough. The straight line through space between two points of
the ellipsoid (their chord, from earth-centred coordinates) is never longer than the
geodesic between them, which is also a path between them; numpy computes every chord in
a few milliseconds, while a geodesic costs microseconds. The problem is a min-cost flow:
an assignment is optimal if and only if its residual graph has no negative cycle, that
is, if and only if node potentials exist under which every residual edge has a reduced
cost `w + p(a) - p(b) >= 0`. So:

1. Take for each order its `NEAREST` couriers by chord and their geodesic distances.
2. Solve the assignment on the pairs known so far.
3. Compute potentials of its residual graph (shortest distances from a virtual source
   joined to every node; they exist because the assignment is optimal on those pairs).
4. Every unknown pair is a residual edge of cost (its geodesic) at least its chord. If its
   chord already has a non-negative reduced cost, so has its geodesic, and the same
   potentials prove the assignment optimal over all pairs: done. Otherwise compute the
   geodesics of the pairs whose chords do not pass, add those in reach, and go to 2.

Each round adds pairs, so it ends; when it ends, the answer is the optimum of the dense
problem, not an approximation of it. Which pairs are in reach is exact too: a chord beyond
the reach puts its geodesic beyond it, one shorter than the reach by more than
`reach_band` puts its geodesic within it, and the few between are decided on their
geodesics.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np

WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
# Couriers per order whose geodesics are computed before the first solve.
NEAREST = 8
# The chords' own rounding (earth-centred coordinates of ~6.4e6 m in float64) is far
# below this; taking it off keeps each chord a lower bound of its geodesic.
CHORD_MARGIN_M = 1e-6
# Reduced costs below -TOLERANCE_M count as negative: floating sums of distances and
# potentials differ from exact ones by far less, and a pair left out by this much changes
# the total by at most this much.
TOLERANCE_M = 1e-6

Distances = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Assignment:
    # Per order row: the courier column it got, or -1.
    courier: np.ndarray
    # Per order row: its distance to that courier (NaN when unassigned).
    distance_m: np.ndarray
    rounds: int
    geodesics: int


def earth_centred(lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points of the WGS84 ellipsoid (height 0) as earth-centred x, y, z in metres."""
    phi, lam = np.radians(lat), np.radians(lng)
    sin_phi = np.sin(phi)
    normal = WGS84_A / np.sqrt(1 - WGS84_E2 * sin_phi**2)
    return np.stack(
        [
            normal * np.cos(phi) * np.cos(lam),
            normal * np.cos(phi) * np.sin(lam),
            normal * (1 - WGS84_E2) * sin_phi,
        ],
        axis=-1,
    )


def chords(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lower bounds of the geodesic distances of every point of `a` to every point of `b`
    (earth-centred, from `earth_centred`): their chords, less the rounding margin."""
    squared = sum((a[:, None, axis] - b[None, :, axis]) ** 2 for axis in range(3))
    return np.sqrt(squared) - CHORD_MARGIN_M


class _Pairs:
    """The geodesics computed so far: NaN where unknown, +inf where beyond reach."""

    def __init__(self, shape: tuple[int, int], *, reach: float, distances: Distances):
        self.known = np.full(shape, np.nan)
        self.reach = reach
        self.distances = distances
        self.computed = 0
        self.rounds = 0

    def add(self, rows: np.ndarray, columns: np.ndarray) -> None:
        if not len(rows):
            return
        measured = np.asarray(self.distances(rows, columns), dtype=float)
        self.known[rows, columns] = np.where(measured <= self.reach, measured, np.inf)
        self.computed += len(rows)


class _Found(NamedTuple):
    """The pairs in reach whose geodesics are known, among `shape` orders by couriers."""

    rows: np.ndarray
    columns: np.ndarray
    distance: np.ndarray
    shape: tuple[int, int]


def _matching(found: _Found, free: np.ndarray, big: float) -> np.ndarray:
    """Per order, the courier it gets in a min-cost assignment over the `found` pairs
    (each courier `free` times), unassigned orders costing `big`; -1 unassigned.

    A sparse solve (LAPJVsp) over those pairs' slots and a slot of its own per row for
    being unassigned: the pairs are few, and a dense orders-by-slots matrix cost more to
    build than to solve. Every weight is one more than its cost (an absent entry is no
    edge, and a courier can stand at the shop); each row has exactly one, so the
    assignment is the same."""
    # Imported here: scipy takes most of a second to import, which every process that
    # loads the URLs or the tasks would otherwise pay at start, for this one use.
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    n, k = found.shape
    slots = int(free.sum())
    pair_rows, pair_columns = found.rows, found.columns
    copies = free[pair_columns]
    first_slot = np.cumsum(free) - free
    # each pair once per slot of its courier: that courier's slots in turn
    nth = np.arange(copies.sum()) - np.repeat(np.cumsum(copies) - copies, copies)
    graph = csr_array(
        (
            np.concatenate([np.repeat(found.distance, copies), np.full(n, big)]) + 1,
            (
                np.concatenate([np.repeat(pair_rows, copies), np.arange(n)]),
                np.concatenate(
                    [np.repeat(first_slot[pair_columns], copies) + nth, slots + np.arange(n)]
                ),
            ),
        ),
        shape=(n, slots + n),
    )
    rows, columns = min_weight_full_bipartite_matching(graph)
    given = np.full(n, -1)
    real = columns < slots
    given[rows[real]] = np.repeat(np.arange(k), free)[columns[real]]
    return given


def _potentials(
    found: _Found, given: np.ndarray, free: np.ndarray, big: float
) -> tuple[np.ndarray, np.ndarray]:
    """Potentials of the residual graph of the assignment `given` over the `found`
    pairs: shortest distances from a virtual source with a zero edge to every node
    (Bellman-Ford, each round vectorised). Returns the orders' and the couriers'.

    Nodes: orders, couriers, the sink (which couriers' slots flow into) and the column of
    unassigned orders (unlimited, at `big` each). Residual edges: an order to a courier in
    reach that it does not have, at the distance; a courier back to each order it has, at
    minus the distance; a courier with a slot left to the sink and the sink to a courier
    with an order, at 0; an assigned order to the unassigned column at `big` and that
    column back to each unassigned order at minus `big`; that column to the sink, and the
    sink to it while it holds an order, at 0."""
    n, k = found.shape
    sink, unassigned = n + k, n + k + 1
    orders, couriers = np.arange(n), np.arange(k)
    has = given >= 0
    load = np.bincount(given[has], minlength=k)
    held = given[found.rows] == found.columns
    edges = [
        (found.rows[~held], n + found.columns[~held], found.distance[~held]),
        (n + found.columns[held], found.rows[held], -found.distance[held]),
        (n + couriers[load < free], sink, 0.0),
        (sink, n + couriers[load > 0], 0.0),
        (orders[has], unassigned, big),
        (unassigned, orders[~has], -big),
        (unassigned, sink, 0.0),
    ]
    if not has.all():
        edges.append((sink, unassigned, 0.0))
    parts = [np.broadcast_arrays(*map(np.atleast_1d, edge)) for edge in edges]
    source, target = (np.concatenate([part[i] for part in parts]).astype(int) for i in (0, 1))
    weight = np.concatenate([part[2] for part in parts]).astype(float)
    distance = np.zeros(n + k + 2)
    # A shortest path has at most one edge per node; a round that improves nothing ends.
    for _ in range(n + k + 3):
        offered = distance[source] + weight
        better = offered < distance[target] - TOLERANCE_M / (n + k + 2)
        if not better.any():
            return distance[:n], distance[n : n + k]
        np.minimum.at(distance, target[better], offered[better])
    raise ArithmeticError("the assignment's residual graph has a negative cycle")


def reach_band(reach: float) -> float:
    """How much shorter than its geodesic a chord can be, for geodesics up to `reach`.

    A geodesic's curvature in space is the ellipsoid's normal curvature along it, at most
    1 / (a (1 - e²)) (the meridian's at the equator). A curve of length L whose curvature
    is at most k has a chord of at least (2 / k) sin(k L / 2) (Schur's comparison theorem,
    for k L <= pi), so it exceeds its chord by at most k² L³ / 24: about 1 mm for 10 km.
    Doubled, with twice the margin taken off the chords added, for the rounding."""
    curvature = 1 / (WGS84_A * (1 - WGS84_E2))
    return 2 * curvature**2 * reach**3 / 24 + 2 * CHORD_MARGIN_M


def _oldest_first(in_reach: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The orders to assign (rows of `in_reach`, oldest first): taken oldest first, each
    when it can have a courier together with those taken before it. So an order waits
    only when the older ones leave it no courier in reach, and no slot stays empty while
    an order in reach of it waits.

    The sets of orders that can be given couriers together are the independent sets of
    a matroid (a transversal one), and in a matroid that greedy choice is the independent
    set of greatest weight for any weights that fall with age; so it is read off one
    maximum-weight assignment of orders to slots, weighing each order by its rank from
    the youngest (whole numbers: exact)."""
    from scipy.optimize import linear_sum_assignment

    rows = np.flatnonzero(in_reach.any(axis=1))
    slot_column = np.repeat(np.arange(len(free)), free)
    weight = np.arange(len(rows), 0, -1, dtype=float)
    cost = -(in_reach[rows][:, slot_column] * weight[:, None])
    matched, slots = linear_sum_assignment(cost)
    return np.sort(rows[matched[cost[matched, slots] < 0]])


def _optimum(
    chosen: np.ndarray, *, in_reach: np.ndarray, bound: np.ndarray, free: np.ndarray, pairs
) -> np.ndarray:
    """Per order of `chosen`, its courier column in the least-distance assignment of as
    many of them as can be assigned (-1 for the others): the rounds of the module
    docstring, from each order's `NEAREST` couriers by chord."""
    n, k = in_reach.shape
    width = min(NEAREST, k)
    nearest = np.argpartition(np.where(in_reach, bound, np.inf), width - 1, axis=1)[:, :width]
    first_rows = np.repeat(chosen, width)
    first_columns = nearest[chosen].ravel()
    first = in_reach[first_rows, first_columns] & np.isnan(pairs.known[first_rows, first_columns])
    pairs.add(first_rows[first], first_columns[first])
    # One more order assigned is worth more than any change of total distance.
    big = pairs.reach * (n + 1)
    while True:
        pairs.rounds += 1
        known = pairs.known[chosen]
        found_rows, found_columns = np.nonzero(np.isfinite(known))
        found = _Found(found_rows, found_columns, known[found_rows, found_columns], known.shape)
        given = _matching(found, free, big)
        order_potential, courier_potential = _potentials(found, given, free, big)
        reduced = bound[chosen] + order_potential[:, None] - courier_potential[None, :]
        doubtful = in_reach[chosen] & np.isnan(known) & (reduced < -TOLERANCE_M)
        if not doubtful.any():
            return given
        doubtful_rows, doubtful_columns = np.nonzero(doubtful)
        pairs.add(chosen[doubtful_rows], doubtful_columns)


def assignment_solve(
    *,
    pickups: np.ndarray,
    couriers: np.ndarray,
    free: np.ndarray,
    reach: float,
    distances: Distances,
) -> Assignment:
    """The optimum (module docstring) for orders at `pickups` (rows, oldest first, as
    earth-centred points) and couriers at `couriers` with `free` slots each.
    `distances(rows, columns)` answers the geodesic distances of those pairs."""
    n, k = len(pickups), len(couriers)
    free = np.asarray(free, dtype=int)
    pairs = _Pairs((n, k), reach=reach, distances=distances)
    courier = np.full(n, -1)
    distance = np.full(n, np.nan)
    if not n or not k:
        return Assignment(courier, distance, 0, 0)
    bound = chords(pickups, couriers)
    # Chords short of the reach by more than the band are of geodesics in reach; those
    # beyond it, of geodesics beyond; the few in the band are decided on their geodesics.
    pairs.add(*np.nonzero((bound <= reach) & (bound >= reach - reach_band(reach))))
    in_reach = (bound < reach - reach_band(reach)) | np.isfinite(pairs.known)
    chosen = np.flatnonzero(in_reach.any(axis=1))
    solve = partial(_optimum, in_reach=in_reach, bound=bound, free=free, pairs=pairs)
    # Most often every order in reach can have a courier: then the oldest-first choice
    # takes them all, and the optimum on them shows it by assigning them all.
    given = solve(chosen) if 0 < len(chosen) <= free.sum() else None
    if given is None or (given < 0).any():
        chosen = _oldest_first(in_reach, free)
        given = solve(chosen) if len(chosen) else np.zeros(0, dtype=int)
    courier[chosen] = given
    has = courier >= 0
    distance[has] = pairs.known[np.flatnonzero(has), courier[has]]
    return Assignment(courier, distance, pairs.rounds, pairs.computed)
