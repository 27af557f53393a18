import django.db.models.functions.text
from django.db import migrations, models


def refuse_case_duplicates(apps, schema_editor):
    """Stop with the clashing names: the index below cannot be built over them, and which
    account keeps the name is a decision for a person, not for a migration."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT upper(username), array_agg(username ORDER BY id) FROM accounts_user"
            " GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 20"
        )
        clashes = cursor.fetchall()
    if clashes:
        listed = "; ".join(", ".join(names) for _upper, names in clashes)
        raise RuntimeError(
            "accounts_user holds usernames that differ only in case, so usernames cannot be "
            f"made unique case-insensitively. Rename all but one of each group first: {listed}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(refuse_case_duplicates, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Upper("username"),
                name="accounts_user_username_upper_unique",
                violation_error_message="A user with that username already exists.",
            ),
        ),
    ]
