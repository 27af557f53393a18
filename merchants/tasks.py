from celery import shared_task

from merchants.services import merchant_open_periods_refresh


@shared_task(name="merchants.open_periods_refresh", ignore_result=True)
def open_periods_refresh() -> int:
    return merchant_open_periods_refresh()
