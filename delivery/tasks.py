from celery import shared_task

from delivery.services import couriers_mark_stale_offline


@shared_task(name="delivery.mark_stale_couriers_offline")
def mark_stale_couriers_offline() -> int:
    return couriers_mark_stale_offline()
