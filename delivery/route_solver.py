"""VROOM's order of a route's stops, computed in a process of its own.

pyvroom holds the GIL for the whole of a solve: half a second of it in a server process
would stop every other request of that process, the event-loop lanes included. So the
solve runs in a child process, `python -m delivery.route_solver` (`delivery.routes` keeps
one per server process, started by its first route), which imports neither Django nor
the rest of the project. A plain subprocess, not multiprocessing's spawn, which imports
the parent's main module again in the child. The child answers `READY` once it has
imported vroom, then one JSON line for each JSON line of `vroom_order`'s keyword
arguments and the request's number `id`: `vroom_order`'s answer with the `id`, or
`{"id": ..., "error": "..."}`; it ends when its input does.
"""

import json
import sys
from datetime import timedelta

import numpy as np
import vroom

# VROOM's most thorough search: 30 orders (61 points) take about half a second on one
# core; a plan uses one thread, as a request uses one core.
EXPLORATION_LEVEL = 5

# (opens, closes): seconds from the start of the plan; None: no window.
Window = tuple[int, int] | None


def vroom_order(
    durations: list[list[int]],
    *,
    start: int | None,
    capacity: int,
    shipments: list[tuple[int, int, int, int, Window]],
    jobs: list[tuple[int, int, Window]],
    seconds: float,
) -> dict:
    """`{"order": ids}`, the ids of the steps in VROOM's order, for one vehicle of
    `capacity` leaving `start` (an index into `durations`; None: from its first stop); or
    `{"order": None, "left_out": ids}` when VROOM leaves steps out (it finds no plan that
    keeps their windows with the others').

    `shipments`: (pickup id, pickup point, drop-off id, drop-off point, drop-off window),
    each one place from its pickup to its drop-off. `jobs`: (id, point, window) of orders
    already on board, a drop-off each. Ids are unique across both."""
    matrix = np.asarray(durations, dtype=np.uint32)
    if start is None:
        # VROOM's vehicles start somewhere: a point nothing is any time from or to.
        start = len(matrix)
        matrix = np.pad(matrix, ((0, 1), (0, 1)))
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=matrix)
    problem.add_vehicle(vroom.Vehicle(id=0, start=start, capacity=vroom.Amount([capacity])))

    def windows(window: Window) -> list:
        return [] if window is None else [vroom.TimeWindow(*window)]

    for pickup, pickup_point, dropoff, dropoff_point, window in shipments:
        problem.add_shipment(
            vroom.ShipmentStep(id=pickup, location=pickup_point),
            vroom.ShipmentStep(id=dropoff, location=dropoff_point, time_windows=windows(window)),
            amount=vroom.Amount([1]),
        )
    for job, point, window in jobs:
        problem.add_job(
            vroom.Job(
                id=job, location=point, delivery=vroom.Amount([1]), time_windows=windows(window)
            )
        )
    solution = problem.solve(
        exploration_level=EXPLORATION_LEVEL, nb_threads=1, timeout=timedelta(seconds=seconds)
    ).to_dict()
    if solution["unassigned"]:
        return {"order": None, "left_out": [step["id"] for step in solution["unassigned"]]}
    return {
        "order": [
            step["id"]
            for route in solution["routes"]
            for step in route["steps"]
            if step["type"] in ("job", "pickup", "delivery")
        ]
    }


READY = "READY"


def serve(requests, answers) -> None:
    answers.write(READY + "\n")
    answers.flush()
    for line in requests:
        number = None
        try:
            request = json.loads(line)
            number = request.pop("id")
            answer = vroom_order(**request)
        except Exception as exc:  # told to the parent, which plans greedily
            answer = {"error": repr(exc)}
        answers.write(json.dumps({**answer, "id": number}) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
