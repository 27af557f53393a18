from django.db import models

# The rollups' sums of money are wider than an order's total (numeric(12,2), up to
# 9,999,999,999.99): a day's revenue (20 digits) holds a hundred million of the largest
# orders, the totals to date (22 digits) a hundred times that. At 14 digits a merchant's
# hundred-and-first largest order of a day failed its delivery on the rollup.


class ReportPeriod(models.Model):
    """One period of a revenue report.

    There is no table: each revenue query defines `report_periods` as a common table
    expression over `generate_series`, so that periods without orders exist as rows
    before the running total and moving average are taken over them.
    """

    period = models.DateField(primary_key=True)

    class Meta:
        managed = False
        db_table = "report_periods"

    def __str__(self) -> str:
        return self.period.isoformat()


class MerchantDay(models.Model):
    """The delivered orders of one merchant on one UTC day of delivery, summed, and the
    orders that failed on that day (dated by their `failed` status change).

    Kept by `analytics.services` in the transaction that delivers, so the reports read
    a row per merchant and day instead of every order. The sums are of the same values
    the reports took from the orders, in the same types, so that what the reports make
    of them (shares, ranks, averages, to the cent) cannot differ: `delivery_time` is
    the sum of the intervals `delivered_at - created_at`, and its average over `orders`
    is the interval PostgreSQL's AVG gives over the orders themselves.
    """

    pk = models.CompositePrimaryKey("merchant_id", "day")
    # No foreign keys: merchants and products are never deleted once they have orders
    # (orders protect them), and a key check on every delivery would buy nothing.
    merchant_id = models.BigIntegerField()
    day = models.DateField()
    orders = models.IntegerField()
    revenue = models.DecimalField(max_digits=20, decimal_places=2)
    delivery_time = models.DurationField()
    # A day may hold failures and no delivery: `orders` 0.
    failed = models.IntegerField(db_default=0)
    # The merchant's running totals: the sums above over all its days up to and including
    # this one. A range's sums are the last row's totals to its end minus the last row's
    # before its start, two index probes a merchant however long the range: the report of
    # every merchant over 90 days reads 40,000 index entries instead of 20,000 merchants'
    # 90 days of rows. Differences of the same types are exact: integers, numerics, and
    # intervals, which PostgreSQL adds and subtracts in days and microseconds apart, so
    # the difference holds the same days and microseconds as the range's sum.
    orders_to_date = models.BigIntegerField()
    revenue_to_date = models.DecimalField(max_digits=22, decimal_places=2)
    delivery_time_to_date = models.DurationField()
    failed_to_date = models.BigIntegerField(db_default=0)

    class Meta:
        indexes = [
            # `rollups_rebuild` deletes the days from a date.
            models.Index(fields=["day"], name="analytics_merchantday_day_idx"),
            # The probes of the running totals read this index alone (index-only scans).
            models.Index(
                fields=["merchant_id", "day"],
                include=[
                    "orders_to_date",
                    "revenue_to_date",
                    "delivery_time_to_date",
                    "failed_to_date",
                ],
                name="analytics_merchantday_totals",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.day}: {self.orders}"


class MerchantTotal(models.Model):
    """A merchant's running totals at its last day of deliveries: the `*_to_date` of its
    latest `MerchantDay`, kept beside them by the same statement. A report whose range
    ends on or after that day (the last N days up to today, as the operators ask) reads
    a merchant's totals to its end here, one row from a join, instead of probing the
    merchant's days for them."""

    merchant_id = models.BigIntegerField(primary_key=True)
    day = models.DateField()
    orders_to_date = models.BigIntegerField()
    revenue_to_date = models.DecimalField(max_digits=22, decimal_places=2)
    delivery_time_to_date = models.DurationField()
    failed_to_date = models.BigIntegerField(db_default=0)

    def __str__(self) -> str:
        return f"{self.merchant_id} to {self.day}: {self.orders_to_date}"


class ProductDay(models.Model):
    """The delivered units and revenue of one product of one merchant on one UTC day."""

    pk = models.CompositePrimaryKey("merchant_id", "product_id", "day")
    merchant_id = models.BigIntegerField()
    product_id = models.BigIntegerField()
    day = models.DateField()
    units = models.IntegerField()
    revenue = models.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["day"], name="analytics_productday_day_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id}/{self.product_id} {self.day}: {self.units}"


class PlatformDay(models.Model):
    """The delivered orders of every merchant on one UTC day, summed in `SHARDS` rows
    (by merchant id): the revenue report of every merchant reads a few rows a day, and
    deliveries by different merchants seldom wait for the same row."""

    SHARDS = 16

    pk = models.CompositePrimaryKey("day", "shard")
    day = models.DateField()
    shard = models.SmallIntegerField()
    orders = models.IntegerField()
    revenue = models.DecimalField(max_digits=22, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.day}/{self.shard}: {self.orders}"
