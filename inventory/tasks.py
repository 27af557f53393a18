from celery import shared_task
from django.utils import timezone

from inventory.services import low_stock_summary_build


@shared_task(
    name="inventory.daily_inventory_summary",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def daily_inventory_summary() -> int:
    return low_stock_summary_build(day=timezone.now().date())
