"""Ids and page keys no column can hold are "no such record", never a 500 (issue 14, hole 7):
every route with an id, each method it takes, and the list pages' page and id filters."""

import base64
import json
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


def _key(*values) -> str:
    """A page key as the pager writes one (portal/pagination.py), holding these values."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [f"/transactions/?after={_key(int(HUGE[1]))}", f"/invoices/?before={_key(int(HUGE[0]))}",
     f"/audit/?after={_key(int(HUGE[2]))}", f"/runs/?after={_key(-5)}",
     f"/transactions/?sort=amount&after={_key(HUGE[2], int(HUGE[1]))}",
     f"/transactions/?gateway={HUGE[1]}", f"/audit/?id={HUGE[1]}"],
)  # fmt: skip
def test_a_huge_page_key_or_filter_id_is_no_500(client, login, make_user, query):
    login(make_user("auditor"))
    assert client.get(query).status_code in (200, 404)


def test_a_huge_owner_in_a_form_is_refused_plainly(client, login, make_user, make_invoice):
    login(make_user("supervisor"))
    invoice = make_invoice()
    response = client.post(f"/invoices/{invoice.id}/take", data={"owner": HUGE[1]})
    assert response.status_code in (302, 400)
