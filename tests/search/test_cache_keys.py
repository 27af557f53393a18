"""A cached answer is shared only by requests that the database and the renderer would
answer alike: a key normalises a request exactly as the query and the body do."""

import pytest

from geomarket.api.fields import GIVEN_MORE_THAN_ONCE
from tests import factories

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/products/"
SUGGEST = "/api/v1/search/suggest/"


def test_suggest_keeps_apart_spellings_that_postgresql_compares_apart(api_client):
    # casefold() makes "straße" "strasse"; PostgreSQL's UPPER() leaves ß as it is.
    factories.product(merchant=factories.merchant(), title="Strasse Map")
    eszett = api_client.get(SUGGEST, {"q": "straße"})
    assert eszett.status_code == 200
    assert eszett.json() == {"query": "straße", "suggestions": []}
    double_s = api_client.get(SUGGEST, {"q": "strasse"})
    assert double_s.status_code == 200
    assert double_s.json() == {"query": "strasse", "suggestions": ["Strasse Map"]}


@pytest.fixture
def three_teas():
    shop = factories.merchant()
    for title in ("Green Tea", "Black Tea", "White Tea"):
        factories.product(merchant=shop, title=title)


def test_search_links_carry_only_the_parameters_the_search_reads(api_client, three_teas):
    first = api_client.get(SEARCH, {"q": "tea", "page_size": 1, "utm": "evil"})
    assert first.status_code == 200
    assert first.json()["next"] == (
        "http://testserver/api/v1/search/products/?page=2&page_size=1&q=tea"
    )
    second = api_client.get(SEARCH, {"q": "tea", "page_size": 1})
    assert second.status_code == 200
    assert second.json()["next"] == first.json()["next"]
    assert second["X-Cache"] == "HIT"
    last = api_client.get(SEARCH, {"page_size": 1, "page": 3, "q": "tea", "ref": "x"})
    assert last.status_code == 200
    assert last.json()["previous"] == (
        "http://testserver/api/v1/search/products/?page=2&page_size=1&q=tea"
    )


def test_search_links_name_each_request_s_own_host(api_client, three_teas):
    local = api_client.get(SEARCH, {"q": "tea", "page_size": 1}, HTTP_HOST="localhost")
    assert local.status_code == 200
    assert local.json()["next"].startswith("http://localhost/")
    loopback = api_client.get(SEARCH, {"q": "tea", "page_size": 1}, HTTP_HOST="127.0.0.1")
    assert loopback.status_code == 200
    assert loopback.json()["next"].startswith("http://127.0.0.1/")
    assert loopback.json()["results"] == local.json()["results"]


@pytest.mark.parametrize("name", ["page", "page_size"])
def test_a_repeated_page_parameter_is_refused_whether_or_not_an_answer_is_kept(
    api_client, three_teas, name
):
    # The answer is filed under the page's link base, which reads each parameter's last
    # copy: a repeated one must be refused before the kept answer is looked up, as the
    # paginator refuses it when the answer is computed.
    query = {"q": "tea", "page_size": "1", "page": "2"}
    kept = api_client.get(SEARCH, query)
    assert kept.status_code == 200
    # Its last copy is the kept answer's.
    repeated = api_client.get(SEARCH, {**query, name: ["3", query[name]]})
    assert repeated.status_code == 400
    assert repeated.json() == {name: [GIVEN_MORE_THAN_ONCE]}
