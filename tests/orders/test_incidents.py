"""An order's incidents: an append-only log its customer, its merchant's owner, its
courier and operators read and add to; anyone else finds no such order."""

from datetime import UTC, datetime

import pytest
from rest_framework.renderers import JSONRenderer

from geomarket.api.pagination import page_body
from orders.models import IncidentKind, OrderIncident
from orders.services import AUTHOR_ROLE_PRECEDENCE
from orders.shapes import INCIDENT
from tests import factories
from tests.market import ORDERS, api_client_as, order_body
from tests.rows import rows
from tests.tracking.tracked import order_with_courier

pytestmark = pytest.mark.django_db


@pytest.fixture
def party(market, as_user) -> dict:
    """The market's order with a courier, and a client for each role, by name."""
    order, _, courier_user = order_with_courier(market)
    # The courier of another order of the same shop.
    _, _, other_courier = order_with_courier(market)
    return {
        "order": order,
        "customer": market["client"],
        "owner": market["owner_client"],
        "courier": as_user(courier_user),
        "operator": as_user(factories.user(is_staff=True)),
        "other customer": as_user(factories.user()),
        "other owner": as_user(factories.merchant().owner),
        "other courier": as_user(other_courier),
        "anonymous": api_client_as(None),
    }


def incidents_of(order) -> str:
    return f"{ORDERS}{order.pk}/incidents/"


PARTIES = ("customer", "owner", "courier", "operator")
STRANGERS = {"other customer": 404, "other owner": 404, "other courier": 404, "anonymous": 401}


@pytest.mark.parametrize("role", PARTIES)
def test_each_party_adds_an_incident_signed_with_its_role(party, role):
    answer = party[role].post(
        incidents_of(party["order"]), {"kind": "late", "note": "20 min late"}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert list(body) == ["id", "kind", "note", "author_role", "created_at"]
    assert (body["kind"], body["note"], body["author_role"]) == ("late", "20 min late", role)
    stored = OrderIncident.objects.get(pk=body["id"])
    assert (stored.order_id, stored.author_role) == (party["order"].pk, role)


@pytest.mark.parametrize("role", PARTIES)
def test_each_party_reads_every_incident_oldest_first(party, role):
    for kind in ("late", "damaged", "missing_item"):
        party["customer"].post(incidents_of(party["order"]), {"kind": kind}, format="json")
    party["courier"].post(incidents_of(party["order"]), {"kind": "address_problem"}, format="json")
    answer = party[role].get(incidents_of(party["order"]))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["count"], body["page"], body["total_pages"]) == (4, 1, 1)
    assert [(row["kind"], row["author_role"]) for row in body["results"]] == [
        ("late", "customer"),
        ("damaged", "customer"),
        ("missing_item", "customer"),
        ("address_problem", "courier"),
    ]


@pytest.mark.parametrize("role", STRANGERS)
def test_anyone_else_finds_no_such_order(party, role):
    OrderIncident.objects.create(
        order=party["order"], kind="late", note="secret", author_role="customer"
    )
    before = rows(OrderIncident)
    read = party[role].get(incidents_of(party["order"]))
    added = party[role].post(incidents_of(party["order"]), {"kind": "other"}, format="json")
    assert (read.status_code, added.status_code) == (STRANGERS[role], STRANGERS[role])
    assert "secret" not in read.content.decode()
    assert rows(OrderIncident) == before
    # As the order's own detail answers them.
    assert party[role].get(f"{ORDERS}{party['order'].pk}/").status_code == STRANGERS[role]


def test_an_unknown_order_is_404(party):
    assert party["operator"].get(f"{ORDERS}999999999/incidents/").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "lost"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"kind": "late", "note": "x" * 2001}, "note"),
    ],
)
def test_an_invalid_incident_is_400_and_recorded_nowhere(party, body, field):
    answer = party["customer"].post(incidents_of(party["order"]), body, format="json")
    assert answer.status_code == 400
    assert field in answer.json()
    assert not OrderIncident.objects.exists()


def test_a_kind_no_answer_can_encode_is_400_not_500(party):
    # A lone surrogate, as a JSON escape: valid JSON, and echoed by the choice's error.
    answer = party["customer"].post(
        incidents_of(party["order"]), '{"kind": "\\ud800"}', content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"kind": ['"\ufffd" is not a valid choice.']}
    assert not OrderIncident.objects.exists()


@pytest.mark.parametrize("kind", IncidentKind.values)
def test_every_kind_is_taken(party, kind):
    answer = party["courier"].post(incidents_of(party["order"]), {"kind": kind}, format="json")
    assert (answer.status_code, answer.json()["kind"], answer.json()["note"]) == (201, kind, "")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_incidents_are_append_only(party, method):
    party["operator"].post(incidents_of(party["order"]), {"kind": "late"}, format="json")
    before = rows(OrderIncident)
    answer = getattr(party["operator"], method)(
        incidents_of(party["order"]), {"kind": "other"}, format="json"
    )
    assert answer.status_code == 405
    assert rows(OrderIncident) == before


def test_incidents_come_a_page_at_a_time(party):
    for _ in range(5):
        party["customer"].post(incidents_of(party["order"]), {"kind": "late"}, format="json")
    page = party["customer"].get(incidents_of(party["order"]), {"page_size": 2, "page": 3}).json()
    assert (page["count"], page["total_pages"], len(page["results"])) == (5, 3, 1)
    assert page["next"] is None
    assert page["previous"] is not None


def test_a_user_of_several_roles_signs_with_the_first(market, as_user):
    """The owner buying at its own shop signs as the owner; staff, as operators."""
    assert AUTHOR_ROLE_PRECEDENCE == ("operator", "owner", "courier", "customer")
    owner_client = market["owner_client"]
    own = owner_client.post(ORDERS, order_body(market, (market["bread"], 2)), format="json")
    assert own.status_code == 201
    signed = owner_client.post(f"{ORDERS}{own.json()['id']}/incidents/", {"kind": "late"})
    assert signed.json()["author_role"] == "owner"
    staff = factories.user(is_staff=True)
    staff_order = as_user(staff).post(ORDERS, order_body(market, (market["bread"], 2)))
    signed = as_user(staff).post(f"{ORDERS}{staff_order.json()['id']}/incidents/", {"kind": "late"})
    assert signed.json()["author_role"] == "operator"


def test_operators_read_incidents_in_the_admin(client, party):
    operator = factories.user(is_staff=True)
    operator.is_superuser = True
    operator.save(update_fields=["is_superuser"])
    client.force_login(operator)
    party["customer"].post(
        incidents_of(party["order"]), {"kind": "damaged", "note": "box crushed"}, format="json"
    )
    incident = OrderIncident.objects.get()
    order_page = client.get(f"/admin/orders/order/{party['order'].pk}/change/")
    assert order_page.status_code == 200
    assert "box crushed" in order_page.content.decode()
    assert client.get("/admin/orders/orderincident/").status_code == 200
    page = client.get(f"/admin/orders/orderincident/{incident.pk}/change/")
    assert page.status_code == 200
    assert "box crushed" in page.content.decode()
    # Read-only: nothing to add, change or delete.
    assert client.get("/admin/orders/orderincident/add/").status_code == 403
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/orders/orderincident/{incident.pk}/delete/").status_code == 403
    assert OrderIncident.objects.filter(pk=incident.pk).exists()


def test_reading_incidents_runs_a_fixed_number_of_queries(party, django_assert_num_queries):
    for kind in IncidentKind.values:
        party["customer"].post(incidents_of(party["order"]), {"kind": kind}, format="json")
    # The token, then the page with its count and whether the caller sees the order.
    for size in (2, 5):
        for role in ("owner", "operator"):
            with django_assert_num_queries(2):
                page = party[role].get(incidents_of(party["order"]), {"page_size": size})
            assert len(page.json()["results"]) == size
    with django_assert_num_queries(2):
        assert party["other owner"].get(incidents_of(party["order"])).status_code == 404


def test_a_page_of_incidents_is_the_bytes_drf_renders(party):
    """Rendered by PostgreSQL from `INCIDENT`, as DRF renders the same rows."""
    notes = ['Caf\u00e9 "Q" \\ \u2028\u2029 \x01\t </script> \U0001f600', "", "plain"]
    for note in notes:
        party["customer"].post(incidents_of(party["order"]), {"kind": "damaged", "note": note})
    # One on a whole second: its time has no fraction.
    OrderIncident.objects.filter(note="plain").update(
        created_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    for query in ({}, {"page_size": 2}, {"page_size": 2, "page": 2}):
        answer = party["courier"].get(incidents_of(party["order"]), query)
        assert answer.status_code == 200
        incidents = OrderIncident.objects.filter(order=party["order"]).order_by("created_at", "id")
        size = query.get("page_size", 20)
        number = query.get("page", 1)
        window = incidents[(number - 1) * size : number * size]
        expected = page_body(
            count=incidents.count(),
            number=number,
            page_size=size,
            link_base=answer.wsgi_request.build_absolute_uri(),
            results=INCIDENT.render_rows(
                [[getattr(i, c) for c in INCIDENT.columns] for i in window]
            ),
        )
        assert answer.content == JSONRenderer().render(expected)


@pytest.mark.parametrize("query", [{"page": "x"}, {"page_size": "x"}, {"page_size": "0"}])
def test_a_malformed_page_is_a_400_only_to_those_who_see_the_order(party, query):
    assert party["customer"].get(incidents_of(party["order"]), query).status_code == 400
    assert party["other owner"].get(incidents_of(party["order"]), query).status_code == 404
