from django.db import models


class PendingBump(models.Model):
    """A namespace whose version a committed write could not bump while Redis was
    failing. `answer_cache.pending_bumps_retry` bumps it once Redis answers, then
    deletes the row."""

    namespace = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.namespace} since {self.created_at:%Y-%m-%d %H:%M:%S}"
