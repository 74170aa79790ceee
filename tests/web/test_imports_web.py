"""Invoices → Import: a preview names every refused row by its line, nothing is written until a
supervisor confirms, a second confirmation or the same file again changes nothing, and a file with
a card number in it is refused whole and never stored."""

import io

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Account, PaymentMethod
from portal.extensions import db
from portal.imports import service
from portal.imports.models import ImportBatch
from portal.invoices.models import Invoice
from tests.web.test_finalize_web import once_from

HEADER = ",".join(service.COLUMNS)


def csv_of(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


GOOD = csv_of(
    "account,CRM-1,,ACC-X1,Contoso Ltd,,,,,,,,,,,",
    "payment_method,PM-1,CRM-1,,,,,,,Sandbox,tok_approve,Visa,4242,12,2030,true",
    "invoice,BILL-1,CRM-1,INV-X1,,USD,1250.00,2026-11-30,true,,,,,,,",
    "invoice,BILL-2,CRM-1,INV-X2,,JPY,15000,2026-11-30,,,,,,,,",
)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def upload(client, data: bytes, name="billing.csv"):
    return client.post("/invoices/import/", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")  # fmt: skip


@pytest.fixture
def supervisor(client, login, make_user, make_gateway):
    make_gateway(name="Sandbox")
    return login(make_user("supervisor"))


def confirm(client, response):
    path = response.headers["Location"]
    return client.post(f"{path}/apply", data={"once": once_from(client, path)},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip


def test_a_preview_writes_nothing_and_a_confirmation_writes_it_once(client, supervisor):
    response = upload(client, GOOD)
    assert response.status_code == 302
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Preview: nothing is written yet" in preview
    assert (count(Account), count(Invoice)) == (0, 0)
    done = confirm(client, response)
    assert "applied: 4 created, 0 updated, 0 unchanged, 0 refused" in done
    invoice = db.session.scalar(select(Invoice).where(Invoice.external_id == "BILL-1"))
    assert (invoice.number, str(invoice.balance_money), invoice.account.name) == (
        "INV-X1",
        "1,250.00 USD",
        "Contoso Ltd",
    )
    method = db.session.scalar(select(PaymentMethod))
    assert (method.token, method.gateway.name) == ("tok_approve", "Sandbox")
    # The same confirmation again (a double click, the back button): refused, nothing more.
    path = response.headers["Location"]
    again = client.post(f"{path}/apply", data={"once": "x"}, follow_redirects=True)
    assert "This form is stale" in again.get_data(
        as_text=True
    ) or "applied already" in again.get_data(as_text=True)
    assert count(Invoice) == 2


def test_the_same_file_again_changes_nothing_and_a_change_is_an_update(client, supervisor):
    confirm(client, upload(client, GOOD))
    again = client.get(upload(client, GOOD).headers["Location"]).get_data(as_text=True)
    assert "<dt>Unchanged</dt><dd>4</dd>" in again and "<dt>To create</dt><dd>0</dd>" in again
    changed = GOOD.replace(b"Contoso Ltd", b"Contoso Limited").replace(
        b"2026-11-30,true", b"2026-12-15,true"
    )
    done = confirm(client, upload(client, changed))
    assert "0 created, 2 updated, 2 unchanged" in done
    assert db.session.scalar(select(Account.name)) == "Contoso Limited"


def test_each_refused_row_is_named_by_its_line_and_reason(client, supervisor):
    bad = csv_of(
        "account,CRM-1,,ACC-X1,Contoso Ltd,,,,,,,,,,,",
        "invoice,BILL-1,CRM-1,INV-X1,,XXX,10.00,2026-11-30,,,,,,,,",
        "invoice,BILL-2,CRM-1,INV-X2,,USD,10.00,30/11/2026,,,,,,,,",
        "invoice,BILL-3,CRM-404,INV-X3,,USD,10.00,2026-11-30,,,,,,,,",
        "invoice,BILL-4,CRM-1,INV-X4,,USD,1e3,2026-11-30,,,,,,,,",
        "invoice,BILL-4,CRM-1,INV-X5,,USD,10.00,2026-11-30,,,,,,,,",
        "payment_method,PM-1,CRM-1,,,,,,,Nowhere,tok_approve,Visa,4242,12,2030,",
        "refund,R-1,,,,,,,,,,,,,,",
        "invoice,BILL-6,CRM-1,,,USD,10.00,2026-11-30,,,,,,,,",
    )
    page = client.get(upload(client, bad).headers["Location"]).get_data(as_text=True)
    for line, reason in [
        (3, "currency &#39;XXX&#39; is not one Settle knows"),
        (4, "due_date &#39;30/11/2026&#39; is not a date (YYYY-MM-DD)"),
        (5, "account CRM-404 is neither in Settle nor a valid row of this file"),
        (6, "write digits"),
        (7, "invoice BILL-4 is on line 6 already"),
        (8, "no gateway named &#39;Nowhere&#39;"),
        (9, "record &#39;refund&#39; is not one of account, payment_method, invoice"),
        (10, "number missing"),
    ]:
        assert f'<td class="num">{line}</td>' in page and reason in page, (line, reason)
    assert "<dt>Refused</dt><dd>8</dd>" in page


@pytest.mark.parametrize("cell", ["4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444"])
def test_a_card_number_refuses_the_whole_file_and_stores_none_of_it(client, supervisor, cell):
    leaky = csv_of(f"payment_method,PM-1,CRM-1,,,,,,,Sandbox,{cell},Visa,1111,12,2030,true")
    response = upload(client, leaky)
    assert response.status_code == 400
    assert "looks like a card number" in response.get_data(as_text=True)
    assert "Line 2, column token" in response.get_data(as_text=True)
    assert count(ImportBatch) == 0


def test_digits_that_fail_the_card_check_are_not_a_card_number():
    assert not service._card_number_in("4111111111111112")
    assert service._card_number_in("4111111111111111")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"number,amount\n1,2\n", "column &#39;amount&#39; is not in"),
    ],
)
def test_a_file_not_in_settles_layout_is_refused_with_why(client, supervisor, data, message):
    response = upload(client, data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert count(ImportBatch) == 0


def test_an_invoice_already_charged_keeps_its_total(client, supervisor, run_for):
    confirm(client, upload(client, GOOD))
    run_for(due_on=__import__("datetime").date(2026, 12, 31))
    changed = GOOD.replace(b"1250.00", b"999.00")
    page = client.get(upload(client, changed).headers["Location"]).get_data(as_text=True)
    assert "was charged or paid already" in page


@pytest.mark.parametrize("role", ["clerk", "auditor"])
def test_only_a_supervisor_imports(client, login, make_user, role):
    login(make_user(role))
    assert client.get("/invoices/import/").status_code == 403
    assert upload(client, GOOD).status_code == 403
    assert count(ImportBatch) == 0


def test_the_template_and_the_example_import_cleanly(app, make_gateway):
    make_gateway(name="Sandbox")
    template = service.plan(service.TEMPLATE)
    assert template.counts == {"create": 3, "update": 0, "unchanged": 0, "refused": 0}
    example = service.plan(service.EXAMPLE.read_text())
    assert example.counts["create"] == 1395 and len(example.refused) == 5
    assert [r.line for r in example.refused] == [1397, 1398, 1399, 1400, 1401]


def test_the_command_line_imports_and_dry_runs(app, make_gateway, tmp_path):
    make_gateway(name="Sandbox")
    path = tmp_path / "billing.csv"
    path.write_bytes(GOOD)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["settle", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "4 rows would be created" in dry.output
    assert count(Invoice) == 0
    done = runner.invoke(args=["settle", "import", str(path)])
    assert done.exit_code == 0 and "4 rows were created" in done.output
    assert count(Invoice) == 2
    path.write_bytes(
        csv_of("payment_method,PM-9,CRM-1,,,,,,,Sandbox,4111111111111111,Visa,1111,,,")
    )
    leaky = runner.invoke(args=["settle", "import", str(path)])
    assert leaky.exit_code != 0 and "card number" in leaky.output


def test_a_large_file_is_written_in_the_background_with_its_progress(client, supervisor, app,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.setitem(app.config, "SETTLE_IMPORT_BACKGROUND_ROWS", 100)
    monkeypatch.setattr(service, "WRITE_BATCH", 250)
    seen = []
    real_write = service.write

    def write(result):
        seen.append(db.session.get(ImportBatch, 1).rows_done)  # progress is committed per batch
        real_write(result)

    monkeypatch.setattr(service, "write", write)
    response = upload(client, service.EXAMPLE.read_bytes(), "example.csv")
    done = confirm(client, response)
    assert "is being written in the background" in done
    batch = db.session.get(ImportBatch, 1, populate_existing=True)
    assert (batch.state, batch.rows_done, batch.rows_total) == ("Applied", 1395, 1395)
    assert seen == [0, 250, 500, 750, 1000, 1250]
    assert (count(Account), count(Invoice)) == (200, 995)
    progress = client.get("/invoices/import/1/progress.json").json
    assert progress == {"state": "Applied", "done": 1395, "total": 1395, "percent": 100,
                        "active": False}  # fmt: skip
    page = client.get("/invoices/import/1").get_data(as_text=True)
    assert "1395 created, 0 updated, 0 unchanged, 5 refused" in page


def test_a_background_import_that_fails_part_way_keeps_what_it_wrote_and_says_how_to_finish(
    client, supervisor, app, monkeypatch
):
    monkeypatch.setitem(app.config, "SETTLE_IMPORT_BACKGROUND_ROWS", 100)
    monkeypatch.setattr(service, "WRITE_BATCH", 500)
    calls = {"n": 0}
    real_write = service.write

    def write(result):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("the disk is full")
        real_write(result)

    monkeypatch.setattr(service, "write", write)
    confirm(client, upload(client, service.EXAMPLE.read_bytes(), "example.csv"))
    batch = db.session.get(ImportBatch, 1, populate_existing=True)
    assert (batch.state, batch.rows_done) == ("Failed", 500)
    assert "import the same file again to write the rest" in batch.error
    assert "The import stopped" in client.get("/invoices/import/1").get_data(as_text=True)
    # The same file again: its preview plans only what is left.
    monkeypatch.setattr(service, "write", real_write)
    again = upload(client, service.EXAMPLE.read_bytes(), "example.csv")
    preview = service.plan(db.session.get(ImportBatch, 2).content)
    assert preview.counts["create"] == 1395 - 500 and preview.counts["unchanged"] == 500
    confirm(client, again)
    assert (count(Account), count(Invoice)) == (200, 995)
