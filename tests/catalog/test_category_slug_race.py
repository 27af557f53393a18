"""Of concurrent writes of one category slug, every loser gets the 400 a write after the
winner gets, naming `slug`, not the unique index's 409."""

from collections.abc import Callable

import pytest

from catalog.models import ProductCategory
from tests import factories
from tests.market import api_client_as
from tests.threads import behind_an_uncommitted_write, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = "/api/v1/categories/"
TAKEN = {"slug": ["A category with this slug already exists."]}


@pytest.fixture
def operator():
    return factories.user(is_staff=True)


def test_every_loser_of_concurrent_creates_of_one_slug_is_told_it_is_taken(operator):
    def create():
        return api_client_as(operator).post(CATEGORIES, {"name": "Eggs", "slug": "eggs"})

    responses = run_in_threads(create, create, create)
    assert sorted(r.status_code for r in responses) == [201, 400, 400]
    assert [r.json() for r in responses if r.status_code == 400] == [TAKEN, TAKEN]
    assert ProductCategory.objects.filter(slug="eggs").count() == 1


def after_a_concurrent_insert_of(slug: str, request: Callable):
    """What `request` answers when another session has inserted a category with `slug`
    and commits it only once `request` waits on the unique index."""
    return behind_an_uncommitted_write(
        "INSERT INTO catalog_productcategory (name, slug) VALUES ('Winner', %s)", [slug], request
    )


def test_a_create_that_waited_for_a_concurrent_one_on_the_unique_index_is_a_400(operator):
    response = after_a_concurrent_insert_of(
        "eggs",
        lambda: api_client_as(operator).post(CATEGORIES, {"name": "Eggs", "slug": "eggs"}),
    )
    assert response.status_code == 400
    assert response.json() == TAKEN
    assert list(ProductCategory.objects.filter(slug="eggs").values_list("name", flat=True)) == [
        "Winner"
    ]


def test_an_update_that_waited_for_a_concurrent_create_on_the_unique_index_is_a_400(operator):
    dairy = factories.category(name="Dairy")
    response = after_a_concurrent_insert_of(
        "eggs",
        lambda: api_client_as(operator).patch(
            f"{CATEGORIES}{dairy.pk}/", {"slug": "eggs"}, format="json"
        ),
    )
    assert response.status_code == 400
    assert response.json() == TAKEN
    dairy.refresh_from_db()
    assert dairy.slug != "eggs"
