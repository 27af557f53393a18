from celery import shared_task

from geomarket import answer_cache


@shared_task(name="geomarket.pending_bumps_retry", ignore_result=True)
def pending_bumps_retry() -> int:
    return answer_cache.pending_bumps_retry()
