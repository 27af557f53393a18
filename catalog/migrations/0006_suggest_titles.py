"""Suggest over distinct titles: `catalog_producttitle`, one row per published title.

Suggest answers distinct titles, but the product indexes hold every product: a common
three letters ("org") match 65,000 products of the bench city, each read from the heap
and grouped into 450 titles before the first 10 are known. This table holds each
published title once with how many published products carry it; the triggers below keep
the count as products are created, renamed, (un)published and deleted, and drop a title
whose count reaches zero. A count taken under the title row's lock (the upsert's, the
update's) keeps two transactions from each deciding that the other holds the title.
Whether the merchant is active is read when suggesting, per answered title, so
deactivating a merchant writes nothing here.
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations, models

SUGGEST_TITLES = """
CREATE TABLE catalog_producttitle (
    title varchar(200) NOT NULL,
    title_upper text GENERATED ALWAYS AS (upper(title::text)) STORED,
    products integer NOT NULL CHECK (products >= 0)
);

CREATE FUNCTION catalog_product_titles_update() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.is_published THEN
        UPDATE catalog_producttitle SET products = products - 1 WHERE title = OLD.title;
        DELETE FROM catalog_producttitle WHERE title = OLD.title AND products = 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.is_published THEN
        INSERT INTO catalog_producttitle (title, products) VALUES (NEW.title, 1)
        ON CONFLICT (title) DO UPDATE SET products = catalog_producttitle.products + 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

INSERT INTO catalog_producttitle (title, products)
SELECT title, count(*) FROM catalog_product WHERE is_published GROUP BY title;

ALTER TABLE catalog_producttitle ADD CONSTRAINT catalog_producttitle_pkey PRIMARY KEY (title);
CREATE INDEX product_title_name_trgm ON catalog_producttitle USING gin (title_upper gin_trgm_ops);
CREATE INDEX product_title_name_prefix ON catalog_producttitle (title_upper text_pattern_ops);
ANALYZE catalog_producttitle;

-- Suggest checks each answered title for a published product of an active merchant by
-- UPPER(title) through product_title_prefix. That index is partial, so the planner has
-- no statistics for UPPER(title) and guesses 0.5% of the products (4,800 on the bench
-- city) per title: the plan's cost then passes jit_above_cost, and compiling it takes
-- 130 ms. These statistics give it the 80 that a title has.
CREATE STATISTICS catalog_product_title_upper ON (upper(title::text)) FROM catalog_product;
ANALYZE catalog_product;

CREATE TRIGGER catalog_product_titles_insert
AFTER INSERT ON catalog_product
FOR EACH ROW WHEN (NEW.is_published)
EXECUTE FUNCTION catalog_product_titles_update();

CREATE TRIGGER catalog_product_titles_update
AFTER UPDATE OF title, is_published ON catalog_product
FOR EACH ROW WHEN (
    OLD.title IS DISTINCT FROM NEW.title OR OLD.is_published <> NEW.is_published
)
EXECUTE FUNCTION catalog_product_titles_update();

CREATE TRIGGER catalog_product_titles_delete
AFTER DELETE ON catalog_product
FOR EACH ROW WHEN (OLD.is_published)
EXECUTE FUNCTION catalog_product_titles_update();
"""

DROP_SUGGEST_TITLES = """
DROP TRIGGER IF EXISTS catalog_product_titles_delete ON catalog_product;
DROP TRIGGER IF EXISTS catalog_product_titles_update ON catalog_product;
DROP TRIGGER IF EXISTS catalog_product_titles_insert ON catalog_product;
DROP FUNCTION IF EXISTS catalog_product_titles_update();
DROP STATISTICS IF EXISTS catalog_product_title_upper;
DROP TABLE IF EXISTS catalog_producttitle;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_search_terms"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProductTitle",
                    fields=[
                        (
                            "title",
                            models.CharField(max_length=200, primary_key=True, serialize=False),
                        ),
                        (
                            "title_upper",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.functions.text.Upper("title"),
                                output_field=models.TextField(),
                            ),
                        ),
                        ("products", models.PositiveIntegerField()),
                    ],
                    options={
                        "indexes": [
                            django.contrib.postgres.indexes.GinIndex(
                                django.contrib.postgres.indexes.OpClass(
                                    "title_upper", name="gin_trgm_ops"
                                ),
                                name="product_title_name_trgm",
                            ),
                            models.Index(
                                django.contrib.postgres.indexes.OpClass(
                                    "title_upper", name="text_pattern_ops"
                                ),
                                name="product_title_name_prefix",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[migrations.RunSQL(SUGGEST_TITLES, DROP_SUGGEST_TITLES)],
        ),
    ]
