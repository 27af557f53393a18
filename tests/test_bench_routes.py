"""The route bench's exact optimum (`bench.scenarios.routes.optimum_s`) is the best of
every sequence the rules allow, and the planner's route is never shorter."""

import itertools
import random

import pytest

from bench.scenarios.routes import duration_s, optimum_s
from delivery.routes import route_sequence, route_valid
from tests.delivery.test_route_solver import random_problem


@pytest.mark.parametrize("seed", range(12))
def test_the_optimum_is_the_best_sequence_the_rules_allow(seed):
    rng = random.Random(seed)
    orders = rng.randint(1, 3)
    capacity = rng.randint(1, 2)
    problem = random_problem(
        rng, orders=orders, capacity=capacity, on_board=rng.randint(0, min(orders, capacity))
    )
    every = [
        duration_s(problem, list(sequence))
        for sequence in itertools.permutations(range(len(problem.stops)))
        if route_valid(problem, list(sequence))
    ]
    assert optimum_s(problem) == min(every)
    assert duration_s(problem, route_sequence(problem, seconds=5)[0]) >= min(every)
