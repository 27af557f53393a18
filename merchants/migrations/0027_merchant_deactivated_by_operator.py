from django.db import migrations, models

# Who turned a merchant off: an operator's deactivation holds against its owner
# (`merchants.services.merchant_update`). The merchants inactive before this were turned
# off by whoever; their owners may turn them on again, as they could.


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0026_local_instants"),
    ]

    operations = [
        migrations.AddField(
            model_name="merchant",
            name="deactivated_by_operator",
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
