"""The dashboard's last 30 days: collected, declined and locked per day, money collected per
currency to the cent, and declines by code and gateway, each with its numbers beside it."""

from datetime import timedelta

from portal import clock
from portal.listings import charts


def test_the_month_counts_each_kind_of_answer_on_its_day(app, make_invoice, run_for):
    for token, amount in [
        ("tok_approve", "1999.99"),
        ("tok_approve", "0.01"),
        ("tok_decline", "5.00"),
        ("tok_review", "7.00"),
        ("tok_hang", "8.00"),
    ]:
        make_invoice(token=token, amount=amount)  # fmt: skip
    make_invoice(token="tok_approve", amount="15000", currency="JPY")
    run_for()
    month = charts.month()
    today = month.days[-1]
    assert len(month.days) == 30 and today.day == clock.today()
    assert (today.success, today.decline, today.locked) == (3, 1, 2)
    assert str(month.collected["USD"][clock.today()]) == "2,000.00 USD"  # exact, not a float sum
    assert str(month.collected["JPY"][clock.today()]) == "15,000 JPY"
    assert month.declines == [("Sandbox", "insufficient_funds", 1)]
    assert charts.month(clock.today() + timedelta(days=40)).days[-1].success == 0


def test_the_dashboard_draws_the_charts_with_their_numbers(client, login, make_user, make_invoice,
                                                           run_for):  # fmt: skip
    make_invoice(token="tok_approve", amount="1999.99")
    make_invoice(token="tok_decline", amount="5.00")
    run_for()
    login(make_user("auditor"))
    page = client.get("/").get_data(as_text=True)
    assert "The last 30 days" in page
    assert (
        'aria-label="Charges per day for the last 30 days: 1 collected, 1 declined, 0 locked'
        in page
    )
    assert "Money collected per day, USD: 1,999.99 USD in all" in page
    assert "<code>insufficient_funds</code>" in page
    assert page.count("<summary>The numbers</summary>") == 2
