from celery import shared_task

from delivery.services import courier_track_partitions_maintain, couriers_mark_stale_offline


@shared_task(name="delivery.mark_stale_couriers_offline", ignore_result=True)
def mark_stale_couriers_offline() -> int:
    return couriers_mark_stale_offline()


@shared_task(name="delivery.courier_track_partitions", ignore_result=True)
def courier_track_partitions() -> dict:
    return courier_track_partitions_maintain()
