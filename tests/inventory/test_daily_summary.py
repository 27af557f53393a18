import datetime
from smtplib import SMTPRecipientsRefused, SMTPServerDisconnected

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.core.mail.backends import locmem

from inventory.models import Inventory, LowStockReport
from inventory.tasks import daily_inventory_summary
from tests import factories

pytestmark = pytest.mark.django_db


def test_daily_summary_stores_and_emails_low_stock_once_per_day():
    owner = factories.user()
    owner.email = "owner@example.org"
    owner.save(update_fields=["email"])
    shop = factories.merchant(owner=owner)
    factories.stock(product=factories.product(merchant=shop, title="Eggs"), quantity=2)
    factories.stock(product=factories.product(merchant=shop, title="Flour"), quantity=50)
    healthy = factories.merchant()
    factories.stock(product=factories.product(merchant=healthy), quantity=99)

    assert daily_inventory_summary() == 1
    report = LowStockReport.objects.get()
    assert report.merchant_id == shop.pk
    assert [item["title"] for item in report.items] == ["Eggs"]
    assert report.emailed_at is not None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@example.org"]
    assert "Eggs" in mail.outbox[0].body

    assert daily_inventory_summary() == 0
    assert len(mail.outbox) == 1


def low_stock_shop():
    owner = factories.user()
    owner.email = "owner@example.org"
    owner.save(update_fields=["email"])
    shop = factories.merchant(owner=owner)
    factories.stock(product=factories.product(merchant=shop, title="Eggs"), quantity=2)
    return shop


@pytest.mark.django_db(transaction=True)
def test_the_summary_is_emailed_with_no_transaction_open(watched_email):
    shop = low_stock_shop()
    assert daily_inventory_summary() == 1
    assert watched_email == [
        {
            "subject": f"{shop.name}: 1 items low on stock",
            "in_atomic_block": False,
            "autocommit": True,
        }
    ]


def test_a_summary_the_mail_server_refused_goes_out_with_the_next_run(monkeypatch):
    low_stock_shop()
    refused = SMTPServerDisconnected("gone")

    def refuse(self, messages):
        raise refused

    with monkeypatch.context() as patched:
        patched.setattr(locmem.EmailBackend, "send_messages", refuse)
        with pytest.raises(SMTPServerDisconnected):
            daily_inventory_summary()
    assert LowStockReport.objects.get().emailed_at is None
    assert mail.outbox == []

    assert daily_inventory_summary() == 0  # the report was written by the first run
    assert len(mail.outbox) == 1
    assert LowStockReport.objects.get().emailed_at is not None
    assert daily_inventory_summary() == 0
    assert len(mail.outbox) == 1


def test_beat_runs_the_summary_at_midnight_utc_and_the_relays_often():
    schedule = settings.CELERY_BEAT_SCHEDULE
    daily = schedule["daily-inventory-summary"]
    assert daily["task"] == "inventory.daily_inventory_summary"
    assert daily["schedule"] == crontab(hour=0, minute=0)
    assert schedule["outbox-relay"]["schedule"] <= 10
    assert datetime.timedelta(seconds=schedule["prune-idempotency-keys"]["schedule"]) <= (
        datetime.timedelta(hours=24)
    )


def refusing(*refused_addresses):
    """The locmem backend, refusing the emails to `refused_addresses` as a mail server
    refuses a recipient."""
    deliver = locmem.EmailBackend.send_messages

    def send_messages(self, messages):
        for message in messages:
            if set(message.to) & set(refused_addresses):
                raise SMTPRecipientsRefused({a: (550, b"no such user") for a in message.to})
        return deliver(self, messages)

    return send_messages


def test_an_owner_whose_email_is_refused_holds_back_no_other_merchant(monkeypatch):
    refused_shop = low_stock_shop()
    refused_shop.owner.email = "gone@example.org"
    refused_shop.owner.save(update_fields=["email"])
    other_shop = low_stock_shop()
    monkeypatch.setattr(locmem.EmailBackend, "send_messages", refusing("gone@example.org"))

    # Raised once every merchant has had its turn, so that the task retries with backoff.
    with pytest.raises(SMTPRecipientsRefused):
        daily_inventory_summary()
    emailed = dict(LowStockReport.objects.values_list("merchant_id", "emailed_at"))
    assert emailed.keys() == {refused_shop.pk, other_shop.pk}
    assert emailed[refused_shop.pk] is None
    assert emailed[other_shop.pk] is not None
    assert [m.to for m in mail.outbox] == [["owner@example.org"]]


def test_a_stored_summary_not_emailed_goes_out_though_the_stock_came_back_since(monkeypatch):
    shop = low_stock_shop()
    with monkeypatch.context() as patched:
        patched.setattr(locmem.EmailBackend, "send_messages", refusing("owner@example.org"))
        with pytest.raises(SMTPRecipientsRefused):
            daily_inventory_summary()
    Inventory.objects.filter(merchant=shop).update(quantity=100)

    assert daily_inventory_summary() == 0
    assert len(mail.outbox) == 1
    assert "Eggs: 2 left" in mail.outbox[0].body
    assert LowStockReport.objects.get().emailed_at is not None


def test_storing_the_reports_costs_the_same_queries_for_any_number_of_merchants(
    django_assert_num_queries,
):
    # Owners without an email: only the storing is counted, no email's lock and mark.
    from inventory.services import low_stock_summary_build

    def merchants_low_on_stock(count: int) -> None:
        for _ in range(count):
            shop = factories.merchant()
            factories.stock(product=factories.product(merchant=shop), quantity=1)

    merchants_low_on_stock(2)
    with django_assert_num_queries(5) as two:
        assert low_stock_summary_build(day=datetime.date(2026, 12, 1)) == 2
    merchants_low_on_stock(5)
    with django_assert_num_queries(len(two.captured_queries)):
        assert low_stock_summary_build(day=datetime.date(2026, 12, 2)) == 7
