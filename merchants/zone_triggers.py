"""Tables derived from the delivery zones (rows keyed by `zone_id`), kept equal to them on
every write path (services, admin, queryset updates, COPY, raw SQL) by statement triggers
with transition tables: a bulk write is one statement of the trigger, not one per row.
A table may be derived from another derived table the same way (its triggers fire on
that table's writes). Used by migrations: what it writes must stay as the migrations that
ran it wrote it."""

ZONES = "merchants_deliveryzone"


def zone_copy_triggers(
    *, name: str, table: str, add: str, change: str, source: str = ZONES, source_key: str = "id"
) -> str:
    """The functions and triggers, named `{source}_{name}_...`, that keep `table` equal
    to the zones (`source`, the zones' table or one derived from it, whose rows name
    their zone by `source_key`): `add` (PL/pgSQL statements) writes the rows of the
    zones in `added_zones`; `change` rewrites those of updated zones, from `old_zones`
    and `new_zones`; the rows of deleted zones are deleted, and a TRUNCATE of `source` (a
    test database's flush) empties `table`."""
    prefix = f"{source}_{name}"
    return f"""
CREATE FUNCTION {prefix}_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {add};
    RETURN NULL;
END
$$;

CREATE FUNCTION {prefix}_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {change};
    RETURN NULL;
END
$$;

CREATE FUNCTION {prefix}_remove() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {table} WHERE zone_id IN (SELECT {source_key} FROM removed_zones);
    RETURN NULL;
END
$$;

CREATE FUNCTION {prefix}_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {table};
    RETURN NULL;
END
$$;

CREATE TRIGGER {prefix}_add
AFTER INSERT ON {source} REFERENCING NEW TABLE AS added_zones
FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_add();

CREATE TRIGGER {prefix}_change
AFTER UPDATE ON {source} REFERENCING OLD TABLE AS old_zones NEW TABLE AS new_zones
FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_change();

CREATE TRIGGER {prefix}_remove
AFTER DELETE ON {source} REFERENCING OLD TABLE AS removed_zones
FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_remove();

CREATE TRIGGER {prefix}_truncate
AFTER TRUNCATE ON {source}
FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_truncate();
"""  # noqa: S608 - fixed fragments only


def zone_copy_triggers_drop(*, name: str, source: str = ZONES) -> str:
    """What undoes `zone_copy_triggers`."""
    prefix = f"{source}_{name}"
    events = ("add", "change", "remove", "truncate")
    return "".join(
        f"DROP TRIGGER {prefix}_{event} ON {source};\nDROP FUNCTION {prefix}_{event}();\n"
        for event in events
    )
