from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="MerchantDay",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "merchant_id",
                        "day",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("merchant_id", models.BigIntegerField()),
                ("day", models.DateField()),
                ("orders", models.IntegerField()),
                ("revenue", models.DecimalField(decimal_places=2, max_digits=14)),
                ("delivery_time", models.DurationField()),
            ],
            options={
                "indexes": [models.Index(fields=["day"], name="analytics_merchantday_day_idx")],
            },
        ),
        migrations.CreateModel(
            name="ProductDay",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "merchant_id",
                        "product_id",
                        "day",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("merchant_id", models.BigIntegerField()),
                ("product_id", models.BigIntegerField()),
                ("day", models.DateField()),
                ("units", models.IntegerField()),
                ("revenue", models.DecimalField(decimal_places=2, max_digits=14)),
            ],
            options={
                "indexes": [models.Index(fields=["day"], name="analytics_productday_day_idx")],
            },
        ),
    ]
