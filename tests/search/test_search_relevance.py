"""Relevance on a labelled set of queries: for each, the products a shopper expects
first, over a small catalog where the right answer is known."""

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/products/"


@pytest.fixture
def catalog():
    dairy = factories.category(name="Dairy")
    bakery = factories.category(name="Bakery")
    fruit = factories.category(name="Fruit")
    drinks = factories.category(name="Drinks")
    shop = factories.merchant()
    rows = {
        "whole_milk": (dairy, "Whole Milk 1L", "Fresh from the farm, milk as it was."),
        "oat_milk": (drinks, "Oat Milk", "Plant based."),
        "milk_chocolate": (dairy, "Milk Chocolate Bar", "Creamy chocolate."),
        "croissant": (bakery, "Butter Croissant", "Made with milk and butter."),
        "biscuits": (bakery, "Tea Biscuits", "Lovely with milk."),
        "green_tea": (drinks, "Green Tea", "Loose leaf tea."),
        "green_apples": (fruit, "Green Apples", "Tart."),
        "apple_juice": (drinks, "Apple Juice", "Pressed apples."),
        "banana": (fruit, "Bananas", "Ripe."),
        "sourdough": (bakery, "Sourdough Bread", "Slow fermented."),
        "lemonade": (drinks, "Lemonade", "From the bakery next door."),
    }
    return {
        key: factories.product(merchant=shop, category=category, title=title, description=text)
        for key, (category, title, text) in rows.items()
    }


def found(api_client, q: str) -> list[int]:
    response = api_client.get(SEARCH, {"q": q})
    assert response.status_code == 200
    return [row["id"] for row in response.json()["results"]]


def ids(catalog, *keys) -> list[int]:
    return [catalog[key].pk for key in keys]


def test_title_matches_come_before_description_matches(api_client, catalog):
    results = found(api_client, "milk")
    # Whole Milk also says "milk" in its description: ranked first; the other two title
    # matches tie, by id; the description-only matches come last.
    assert results == ids(
        catalog, "whole_milk", "oat_milk", "milk_chocolate", "croissant", "biscuits"
    )


def test_a_category_name_matches_every_product_in_it(api_client, catalog):
    assert found(api_client, "fruit") == ids(catalog, "green_apples", "banana")


def test_a_category_match_ranks_above_a_description_match(api_client, catalog):
    assert found(api_client, "bakery") == ids(
        catalog, "croissant", "biscuits", "sourdough", "lemonade"
    )


def test_every_word_of_a_multiword_query_must_match(api_client, catalog):
    assert found(api_client, "green tea") == ids(catalog, "green_tea")
    assert found(api_client, "sourdough bread") == ids(catalog, "sourdough")


def test_a_word_in_title_and_description_beats_the_title_alone(api_client, catalog):
    assert found(api_client, "tea") == ids(catalog, "green_tea", "biscuits")
    # "apples" and "apple" share the stem: the juice says it twice.
    assert found(api_client, "apple") == ids(catalog, "apple_juice", "green_apples")


def test_stems_and_case_are_folded(api_client, catalog):
    assert found(api_client, "Croissants") == ids(catalog, "croissant")
    assert found(api_client, "MILK") == found(api_client, "milk")


def test_phrases_and_exclusions(api_client, catalog):
    assert found(api_client, '"oat milk"') == ids(catalog, "oat_milk")
    assert found(api_client, "milk -chocolate -butter") == ids(
        catalog, "whole_milk", "oat_milk", "biscuits"
    )
    assert found(api_client, "lemonade or bananas") == ids(catalog, "banana", "lemonade")
