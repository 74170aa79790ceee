"""Gateways → Unmapped codes: every code no mapping knew, with a suggested entry; a supervisor
marks one reviewed; once the mapping knows the code, the entry says so."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.models import UnmappedReview


@pytest.fixture
def unmapped_twice(make_invoice, run_for):
    make_invoice(token="tok_unknown")
    make_invoice(token="tok_unknown")
    make_invoice(token="tok_approve")
    run_for()


def test_the_queue_shows_each_unmapped_code_once_with_its_count_and_a_guess(
    client, login, make_user, unmapped_twice
):
    login(make_user("auditor"))
    page = client.get("/gateways/unmapped").get_data(as_text=True)
    assert page.count("<code>zz_unlisted_code</code>") == 1
    assert "2 times" in page and "Not reviewed yet." in page
    assert "GUESSED by Settle" in page and "Mark reviewed" not in page  # an auditor only reads
    gateways = client.get("/gateways/").get_data(as_text=True)
    assert "33.3 %" in gateways and "1 of 3" in gateways  # coverage of the last 30 days


def test_a_supervisor_marks_a_code_reviewed_once_and_it_is_audited(
    client, login, make_user, unmapped_twice
):
    login(make_user("supervisor"))
    data = {"plugin": "sandbox", "code": "zz_unlisted_code", "note": "asked the provider"}
    page = client.post("/gateways/unmapped/review", data=data, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "is marked reviewed" in text and "asked the provider" in text
    again = client.post("/gateways/unmapped/review", data=data, follow_redirects=True)
    assert "marked reviewed already" in again.get_data(as_text=True)
    assert len(db.session.scalars(select(UnmappedReview)).all()) == 1
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "gateway.unmapped_reviewed")
    )
    assert event.after == {"plugin": "sandbox", "code": "zz_unlisted_code"}
    bad = client.post(
        "/gateways/unmapped/review", data={"plugin": "nope", "code": "x"}, follow_redirects=True
    )
    assert "Unknown provider" in bad.get_data(as_text=True)


def test_a_clerk_cannot_mark_a_code_reviewed(client, login, make_user, unmapped_twice):
    login(make_user("clerk"))
    data = {"plugin": "sandbox", "code": "zz_unlisted_code"}
    assert client.post("/gateways/unmapped/review", data=data).status_code == 403
    assert db.session.scalar(select(UnmappedReview)) is None


def test_once_the_mapping_knows_the_code_the_entry_says_so(
    client, login, make_user, unmapped_twice, monkeypatch
):
    mapping = registry.shipped_mapping("sandbox")
    known = mapping.codes["approved"]
    monkeypatch.setitem(mapping.codes, "zz_unlisted_code", known)  # as after a restart
    login(make_user("auditor"))
    page = client.get("/gateways/unmapped").get_data(as_text=True)
    assert "The mapping knows it now" in page and f"line {known.line}" in page


def test_a_review_without_its_code_is_refused_with_the_reason(
    client, login, make_user, unmapped_twice
):
    login(make_user("supervisor"))
    page = client.post(
        "/gateways/unmapped/review", data={"plugin": "sandbox"}, follow_redirects=True
    )
    assert "Say which code" in page.get_data(as_text=True)
    long_note = {"plugin": "sandbox", "code": "zz_unlisted_code", "note": "x" * 501}
    page = client.post("/gateways/unmapped/review", data=long_note, follow_redirects=True)
    assert "Say which code" in page.get_data(as_text=True)
    assert db.session.scalar(select(UnmappedReview)) is None


def test_two_supervisors_marking_at_once_leave_one_review(app, unmapped_twice, make_user):
    from unittest import mock

    from portal.errors import DomainError
    from portal.gateways import service

    first, second = make_user("supervisor"), make_user("supervisor", username="sup2")
    service.mark_reviewed("sandbox", "zz_unlisted_code", None, first)
    db.session.commit()
    # The second read its check before the first committed: the unique row decides.
    with (
        mock.patch.object(db.session, "scalar", return_value=None),
        pytest.raises(DomainError, match="a moment ago"),
    ):
        service.mark_reviewed("sandbox", "zz_unlisted_code", None, second)
    (review,) = db.session.scalars(select(UnmappedReview)).all()
    assert review.reviewed_by_id == first.id
