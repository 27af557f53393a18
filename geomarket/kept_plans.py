"""Statements whose plan each database session keeps: PL/pgSQL functions generated from
the code's statements.

PostgreSQL plans a statement sent with its values written in on every call, and a
prepared one again on each call while a custom plan looks cheaper. Planning a search
took about as long as running it (0.9 ms of 1.9 on the demo city), and a statement sent
through a transaction pooler, or replayed as text, cannot be prepared at all. A
PL/pgSQL function prepares its statement once per session, and with `plan_cache_mode =
force_generic_plan` set on it keeps one generic plan there: a call then costs no
planning, whether the caller prepares the call or sends it with its values written in.

A `KeptPlan` is such a function, generated from a statement in psycopg's `%(name)s`
style, so that the statement stays written once:
- each parameter the statement names becomes an argument of the type `types` gives;
- `computed` values (`Computed`) are worked out once per call, in the order given, from
  the arguments and the values before them, and every place the statement spells one is
  read from its variable instead (a full-text query parsed once, not once per row);
- `call()` is the statement that runs it with the same parameters.

A generic plan is made without the parameters' values: keep only statements whose plan
does not depend on them (an index walk that stops at a limit, a probe by key), and test
their plans.

After each `migrate`, `sync` installs each function the database holds otherwise (with
another body, or another signature), as the stored JSON triggers are kept
(`geomarket.shapes.installed_function_body`).
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import import_module

from django.db import connections

from geomarket.shapes import installed_function_body

_PARAMETER = re.compile(r"%\((\w+)\)s")
# A statement's arguments are named apart from any column it reads: `#variable_conflict
# use_column` makes a column win where the two would clash, so an argument must not
# share a column's name to be read at all.
ARGUMENT_PREFIX = "arg_"


@dataclass(frozen=True)
class Computed:
    """A value worked out once per call: `spelling` is the expression as the statement
    writes it (over its parameters and the computed values before it); `name` is the
    function's variable holding it."""

    spelling: str
    name: str
    type: str


@dataclass(frozen=True)
class KeptPlan:
    name: str
    statement: str
    # The SQL type of each parameter the statement or a computed value reads.
    types: dict[str, str]
    # The result's columns: (name, SQL type), in the statement's order.
    returns: Sequence[tuple[str, str]]
    computed: Sequence[Computed] = ()
    volatility: str = "STABLE"
    # Planner settings the function runs with (`SET` on it).
    settings: dict[str, str] = field(default_factory=dict)
    # Planned afresh on each call with its values (`EXECUTE ... USING`), for a part of a
    # kept statement whose best plan depends on them: the function still parses its
    # values once, and stands in the statement as one call (`expression`).
    replanned: bool = False
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def arguments(self) -> list[str]:
        """The parameters the function takes, in the order the statement first names
        them (a computed value's own reads included)."""
        if "arguments" not in self._cache:
            named = _PARAMETER.findall(self.statement)
            for computed in self.computed:
                named += _PARAMETER.findall(computed.spelling)
            unknown = set(named) - set(self.types)
            if unknown:
                raise ValueError(f"{self.name}: no type for {sorted(unknown)}")
            self._cache["arguments"] = list(dict.fromkeys(named))
        return self._cache["arguments"]

    def _read(self, sql: str, computed: Sequence[Computed]) -> str:
        """`sql` reading `computed` from their variables (a later one first: it may
        spell an earlier one inside its own spelling) and the parameters from the
        arguments, with psycopg's `%%` back to `%`."""
        for value in reversed(computed):
            sql = sql.replace(value.spelling, value.name)
        sql = _PARAMETER.sub(lambda match: ARGUMENT_PREFIX + match.group(1), sql)
        return sql.replace("%%", "%")

    @property
    def body(self) -> str:
        """The function's body, as pg_proc.prosrc holds it. Its first line names the
        signature, so that a body read back differs whenever the function would."""
        if "body" not in self._cache:
            statement = self._read(self.statement, self.computed)
            if "%(" in statement:
                raise ValueError(f"{self.name}: the statement has a parameter left")
            declared = "".join(
                f"\n    {value.name} {value.type} := "
                f"{self._read(value.spelling, self.computed[:index])};"
                for index, value in enumerate(self.computed)
            )
            if self.replanned:
                numbered, variables = self._numbered()
                using = ", ".join(name for name, _ in variables)
                run = f"EXECUTE $run${numbered.strip()}$run$ USING {using}"
            else:
                run = statement.strip()
            self._cache["body"] = (
                f"\n-- ({self._signature()}) RETURNS TABLE ({self._returns()})"
                f"{self._settings()}\n"
                "#variable_conflict use_column\n"
                f"DECLARE{declared}\nBEGIN\n    RETURN QUERY {run};\nEND;\n"
            )
        return self._cache["body"]

    def _signature(self) -> str:
        return ", ".join(f"{ARGUMENT_PREFIX}{name} {self.types[name]}" for name in self.arguments)

    def _all_settings(self) -> dict[str, str]:
        if self.replanned:
            return dict(self.settings)
        return {"plan_cache_mode": "force_generic_plan", **self.settings}

    def _settings(self) -> str:
        """The function's `SET` clauses."""
        return "".join(f" SET {name} = {value}" for name, value in self._all_settings().items())

    def _returns(self) -> str:
        return ", ".join(f"{name} {sql_type}" for name, sql_type in self.returns)

    @property
    def create(self) -> str:
        """The statement installing the function."""
        return (
            f"CREATE FUNCTION {self.name}({self._signature()})"
            f" RETURNS TABLE ({self._returns()}) LANGUAGE plpgsql {self.volatility}"
            f"{self._settings()} AS $kept${self.body}$kept$"
        )

    def expression(self) -> str:
        """The function applied to the statement's own parameters (`%(name)s`), each
        cast to its argument's type (a NULL has no type of its own): a set of rows, for
        a FROM clause."""
        values = ", ".join(f"%({name})s::{self.types[name]}" for name in self.arguments)
        return f"{self.name}({values})"

    def call(self) -> str:
        """The statement running the function, taking the statement's own parameters."""
        if "call" not in self._cache:
            self._cache["call"] = f"SELECT * FROM {self.expression()}"  # noqa: S608
        return self._cache["call"]

    def _numbered(self) -> tuple[str, list[tuple[str, str]]]:
        """The statement with its arguments and computed values as `$1`, `$2`... in that
        order, and those variables (name, type)."""
        variables = [
            *((ARGUMENT_PREFIX + name, self.types[name]) for name in self.arguments),
            *((value.name, value.type) for value in self.computed),
        ]
        statement = self._read(self.statement, self.computed)
        # The longest names first: one may begin another.
        for number, (name, _) in sorted(enumerate(variables, 1), key=lambda v: -len(v[1][0])):
            statement = re.sub(rf"\b{name}\b", f"${number}", statement)
        return statement, variables

    def explain(self, cursor, params: dict, *, options: str = "") -> str:
        """EXPLAIN (with `options`) of the statement as the function runs it, for
        `params` (the statement's own): its generic plan, the arguments and the computed
        values each a parameter; a replanned one's plan for these values. Inside the
        caller's transaction."""
        return "\n".join(row[0] for row in self.explain_rows(cursor, params, options=options))

    def explain_rows(self, cursor, params: dict, *, options: str = "") -> list[tuple]:
        """`explain`'s rows as EXPLAIN returns them (one JSON document for FORMAT JSON)."""
        statement, variables = self._numbered()
        values = [
            *(f"%({name})s::{self.types[name]}" for name in self.arguments),
            *(f"({value.spelling})::{value.type}" for value in self.computed),
        ]
        mode = {"plan_cache_mode": "force_custom_plan"} if self.replanned else {}
        for name, value in {**self._all_settings(), **mode}.items():
            cursor.execute(f"SET LOCAL {name} = {value}")
        # A statement left prepared by a call that failed (the session keeps it).
        cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = 'kept_plan_explained'")
        if cursor.fetchone():
            cursor.execute("DEALLOCATE kept_plan_explained")
        types = ", ".join(sql_type for _, sql_type in variables)
        cursor.execute(f"PREPARE kept_plan_explained ({types}) AS {statement}")
        try:
            cursor.execute(
                f"EXPLAIN {options} EXECUTE kept_plan_explained ({', '.join(values)})", params
            )
            return cursor.fetchall()
        finally:
            cursor.execute("DEALLOCATE kept_plan_explained")

    def sync(self, cursor) -> bool:
        """Install the function where the database holds another (or none); True when it
        did. Every function of the name goes first: another signature would otherwise
        stay beside it as an overload."""
        if installed_function_body(cursor, self.name) == self.body:
            return False
        cursor.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE proname = %s"
            " AND pronamespace = current_schema()::regnamespace",
            [self.name],
        )
        for (signature,) in cursor.fetchall():
            cursor.execute(f"DROP FUNCTION {signature}")
        cursor.execute(self.create)
        return True


def sync(plans: Iterable[KeptPlan], *, using: str = "default") -> list[str]:
    """Install each of `plans` the database holds otherwise; the names installed."""
    with connections[using].cursor() as cursor:
        return [plan.name for plan in plans if plan.sync(cursor)]


def sync_after_migrate(module: str):
    """A `post_migrate` receiver installing the kept plans `module` lists (`KEPT_PLANS`),
    imported when it runs: an app's selectors import its models. Connect it with
    `weak=False`."""

    def receiver(sender, *, using: str, **kwargs) -> None:
        sync(import_module(module).KEPT_PLANS, using=using)

    return receiver
