"""Ids and page numbers no column can hold are "no such record", never a 500 (issue 14, hole 7):
every route with an id, each method it takes, and the list pages' page and id filters."""

import re

import pytest

from portal.ids import LARGEST

HUGE = [str(LARGEST + 1), str(2**70), "9" * 40]


@pytest.mark.parametrize("number", HUGE)
def test_every_route_answers_a_huge_id_with_a_404(app, client, login, make_user, number):
    login(make_user("admin"))
    rules = [r for r in app.url_map.iter_rules() if "<int:" in r.rule]
    assert len(rules) > 20
    for rule in rules:
        path = re.sub(r"<int:[^>]+>", number, rule.rule)
        path = re.sub(r"<(?:string:)?[a-z_]+>", "sandbox", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code in (404, 405), (method, path, response.status_code)


@pytest.mark.parametrize(
    "query",
    [f"/transactions/?page={HUGE[1]}", f"/invoices/?page={HUGE[0]}", f"/audit/?page={HUGE[2]}",
     f"/transactions/?gateway={HUGE[1]}", f"/audit/?id={HUGE[1]}", "/runs/?page=-5"],
)  # fmt: skip
def test_a_huge_page_number_or_filter_id_is_no_500(client, login, make_user, query):
    login(make_user("auditor"))
    assert client.get(query).status_code in (200, 404)


def test_a_huge_owner_in_a_form_is_refused_plainly(client, login, make_user, make_invoice):
    login(make_user("supervisor"))
    invoice = make_invoice()
    response = client.post(f"/invoices/{invoice.id}/take", data={"owner": HUGE[1]})
    assert response.status_code in (302, 400)
