"""Full-text search that stops early: a rank-ordered index of each word's products.

A GIN index answers `search_vector @@ query` with every match at once, as a bitmap: a
broad word ("organic": 135,000 products of the bench city) costs a bitmap of them all,
then a read of each row to rank it, before the first 20 can be sent. `catalog_productterm`
holds one row per lexeme of a published product's title or category name (the weights A
and B of `search_vector`), with its rank for that word alone; its primary key (lexeme,
rank_key, product_id), carrying the columns the filters read, walks a word's products
best first and stops after the page. The triggers below keep it equal to the products,
from the same function that fills it here.

`catalog_product_search_estimate` gives the planner's estimate of a query's matches, for
the counts past the bound that search counts exactly (`catalog.selectors`).
"""

import django.db.models.deletion
from django.db import migrations, models

SEARCH_TERMS = """
CREATE TABLE catalog_productterm (
    lexeme text NOT NULL,
    rank_key double precision NOT NULL,
    product_id bigint NOT NULL,
    price numeric(10, 2) NOT NULL,
    merchant_id bigint NOT NULL,
    category_id bigint NOT NULL
);

-- A product's rows: each lexeme weighted A (title) or B (category name), and minus its
-- ts_rank_cd for a query of that lexeme alone, so that an ascending key walks best first.
-- The lexeme goes into the query through tsvector's text form, which quotes it as a
-- tsquery reads it.
CREATE FUNCTION catalog_product_terms(
    term_product_id bigint, term_vector tsvector, term_price numeric,
    term_merchant_id bigint, term_category_id bigint
) RETURNS SETOF catalog_productterm LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t.lexeme,
           -ts_rank_cd(term_vector, array_to_tsvector(ARRAY[t.lexeme])::text::tsquery)::float8,
           term_product_id, term_price, term_merchant_id, term_category_id
    FROM unnest(term_vector) t
    WHERE t.weights && ARRAY['A', 'B']
$$;

CREATE FUNCTION catalog_product_terms_update() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM catalog_productterm WHERE product_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.is_published THEN
        INSERT INTO catalog_productterm
        SELECT * FROM catalog_product_terms(
            NEW.id, NEW.search_vector, NEW.price, NEW.merchant_id, NEW.category_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

SET LOCAL maintenance_work_mem = '256MB';

INSERT INTO catalog_productterm
SELECT t.*
FROM catalog_product p
CROSS JOIN LATERAL catalog_product_terms(p.id, p.search_vector, p.price, p.merchant_id, p.category_id) t
WHERE p.is_published;

ALTER TABLE catalog_productterm
    ADD CONSTRAINT catalog_productterm_pkey PRIMARY KEY (lexeme, rank_key, product_id)
    INCLUDE (price, merchant_id, category_id);
CREATE INDEX catalog_productterm_product_id ON catalog_productterm (product_id);
ANALYZE catalog_productterm;

-- After the search_vector trigger (BEFORE) has set the row's vector.
CREATE TRIGGER catalog_product_terms_insert
AFTER INSERT ON catalog_product
FOR EACH ROW WHEN (NEW.is_published)
EXECUTE FUNCTION catalog_product_terms_update();

CREATE TRIGGER catalog_product_terms_update
AFTER UPDATE ON catalog_product
FOR EACH ROW WHEN (
    OLD.search_vector IS DISTINCT FROM NEW.search_vector
    OR OLD.price <> NEW.price
    OR OLD.is_published <> NEW.is_published
    OR OLD.merchant_id <> NEW.merchant_id
    OR OLD.category_id <> NEW.category_id
)
EXECUTE FUNCTION catalog_product_terms_update();

CREATE TRIGGER catalog_product_terms_delete
AFTER DELETE ON catalog_product
FOR EACH ROW WHEN (OLD.is_published)
EXECUTE FUNCTION catalog_product_terms_update();

-- The planner's estimate of the published products matching `query` (all without one)
-- and the filters given (NULL for none), read from the column statistics by EXPLAIN
-- without running anything; the values are planned as the constants they are.
CREATE FUNCTION catalog_product_search_estimate(
    query tsquery, min_price numeric, max_price numeric, merchant_id bigint, category_id bigint
) RETURNS float8 AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM catalog_product WHERE is_published'
        ' AND ($1 IS NULL OR search_vector @@ $1)'
        ' AND ($2 IS NULL OR price >= $2) AND ($3 IS NULL OR price <= $3)'
        ' AND ($4 IS NULL OR merchant_id = $4) AND ($5 IS NULL OR category_id = $5)'
        INTO plan USING query, min_price, max_price, merchant_id, category_id;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

DROP_SEARCH_TERMS = """
DROP FUNCTION IF EXISTS catalog_product_search_estimate(tsquery, numeric, numeric, bigint, bigint);
DROP TRIGGER IF EXISTS catalog_product_terms_delete ON catalog_product;
DROP TRIGGER IF EXISTS catalog_product_terms_update ON catalog_product;
DROP TRIGGER IF EXISTS catalog_product_terms_insert ON catalog_product;
DROP FUNCTION IF EXISTS catalog_product_terms_update();
DROP FUNCTION IF EXISTS catalog_product_terms(bigint, tsvector, numeric, bigint, bigint);
DROP TABLE IF EXISTS catalog_productterm;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_listing_json"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProductTerm",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "lexeme",
                                "rank_key",
                                "product_id",
                                blank=True,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("lexeme", models.TextField()),
                        ("rank_key", models.FloatField()),
                        ("price", models.DecimalField(decimal_places=2, max_digits=10)),
                        ("merchant_id", models.BigIntegerField()),
                        ("category_id", models.BigIntegerField()),
                        (
                            "product",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="catalog.product",
                            ),
                        ),
                    ],
                ),
            ],
            database_operations=[migrations.RunSQL(SEARCH_TERMS, DROP_SEARCH_TERMS)],
        ),
    ]
