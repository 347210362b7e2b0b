"""The data tests data_quality_test knows, how they are written in YAML, and the generic tests we ship.

dbt has four generic tests built in. The dbt_utils ones an analytics engineer reaches for next are shipped here as
the project's own generic tests, with dbt_utils' names and arguments, written into `<test-path>/generic/` the
first time a model uses one: they work offline and without packages. When the project has dbt_utils installed,
its versions are used instead (`dbt_utils.<name>`), and a project that already defines a generic test of that
name keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.errors import ToolFailure


@dataclass(frozen=True)
class TestKind:
    name: str
    level: str  # "column" | "model"
    required: tuple[str, ...]
    builtin: bool  # dbt core's own; otherwise shipped (or dbt_utils')


KINDS = {k.name: k for k in [
    TestKind("unique", "column", (), True),
    TestKind("not_null", "column", (), True),
    TestKind("accepted_values", "column", ("values",), True),
    TestKind("relationships", "column", ("to", "field"), True),
    TestKind("accepted_range", "column", (), False),
    TestKind("not_constant", "column", (), False),
    TestKind("unique_combination_of_columns", "model", ("combination_of_columns",), False),
    TestKind("recency", "model", ("datepart", "field", "interval"), False),
    TestKind("equal_rowcount", "model", ("compare_model",), False),
]}

SHIPPED_SQL = {  # laid out for sqlfluff's default rules (lines <= 80, Jinja tags where its LT02 expects them)
    "accepted_range": """\
{#- Shipped by dbt-ae-mcp: same name and arguments as
    dbt_utils.accepted_range. -#}
{% test accepted_range(
    model, column_name, min_value=none, max_value=none, inclusive=true
) %}

with meet_condition as (
    select {{ column_name }} as tested_value
    from {{ model }}
    where {{ column_name }} is not null
)

select tested_value
from meet_condition
where 1 = 2
{% if min_value is not none %}
    or not (tested_value {{ ">=" if inclusive else ">" }} {{ min_value }})
{% endif %}
{% if max_value is not none %}
    or not (tested_value {{ "<=" if inclusive else "<" }} {{ max_value }})
{% endif %}

{% endtest %}
""",
    "not_constant": """\
{#- Shipped by dbt-ae-mcp: same name and arguments as
    dbt_utils.not_constant. -#}
{% test not_constant(model, column_name, group_by_columns=[]) %}
    {%- set group_by = group_by_columns | join(', ') -%}

select
    {{ group_by ~ ',' if group_by else '' }}
    count(distinct {{ column_name }}) as distinct_values
from {{ model }}
{% if group_by %}
    group by {{ group_by }}
{% endif %}
having count(distinct {{ column_name }}) = 1

{% endtest %}
""",
    "unique_combination_of_columns": """\
{#- Shipped by dbt-ae-mcp: same name and arguments as
    dbt_utils.unique_combination_of_columns. -#}
{% test unique_combination_of_columns(
    model, combination_of_columns, quote_columns=false
) %}
    {%- set columns = [] -%}
    {%- for column in combination_of_columns -%}
        {%- do columns.append(adapter.quote(column) if quote_columns else column) -%}
    {%- endfor -%}

select
    {{ columns | join(', ') }},
    count(*) as duplicate_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
""",
    "recency": """\
{#- Shipped by dbt-ae-mcp: same name and arguments as dbt_utils.recency. -#}
{% test recency(
    model, field, datepart, interval, ignore_time_component=false
) %}
    {%- set threshold = dbt.dateadd(
        datepart, interval * -1, dbt.current_timestamp()
    ) -%}
    {%- if ignore_time_component -%}
        {%- set threshold = "cast(" ~ threshold ~ " as date)" -%}
    {%- endif -%}

with recency as (
    select max({{ "cast(" ~ field ~ " as date)" if ignore_time_component else field }}) as most_recent
    from {{ model }}
)

select most_recent, {{ threshold }} as threshold
from recency
where most_recent is null or most_recent < {{ threshold }}

{% endtest %}
""",
    "equal_rowcount": """\
{#- Shipped by dbt-ae-mcp: same name and arguments as
    dbt_utils.equal_rowcount. -#}
{% test equal_rowcount(model, compare_model) %}

with model_rows as (
    select count(*) as row_count from {{ model }}
),

compare_rows as (
    select count(*) as row_count from {{ compare_model }}
)

select model_rows.row_count as model_row_count, compare_rows.row_count as compare_row_count
from model_rows
cross join compare_rows
where model_rows.row_count != compare_rows.row_count

{% endtest %}
""",
}


@dataclass
class TestRequest:
    """One test as an agent asked for it: a kind, a column (for column tests), arguments and config."""

    name: str
    column: str | None
    arguments: dict[str, Any]
    config: dict[str, Any]


def parse_spec(spec: Any, column: str | None) -> TestRequest:
    """'unique' | {'accepted_values': {'values': [...]}} | {'relationships': {'to': ..., 'field': ..., 'config': {...}}}."""
    if isinstance(spec, str):
        return TestRequest(spec, column, {}, {})
    if isinstance(spec, dict) and len(spec) == 1:
        name, raw = next(iter(spec.items()))
        raw = dict(raw or {})
        raw = {**raw.pop("arguments", {}), **raw}  # dbt's own form (arguments:) is accepted too
        config = dict(raw.pop("config", {}) or {})
        return TestRequest(str(name), column, raw, config)
    raise ToolFailure("invalid_test", f"Cannot read the test {spec!r}.",
                      "Give a test as a name ('unique') or a one-key mapping ({'accepted_values': {'values': ['a', 'b']}}).")


def check(request: TestRequest, known_generic: set[str]) -> TestKind | None:
    """The kind (None for a project or package generic test we pass through); raises for unknown or incomplete tests."""
    kind = KINDS.get(request.name)
    if kind is None:
        if request.name in known_generic:
            return None
        raise ToolFailure("unknown_test", f"Unknown data test {request.name!r}.",
                          f"Use one of {', '.join(KINDS)} or a generic test defined in the project or its packages.")
    if kind.level == "column" and not request.column:
        raise ToolFailure("invalid_test", f"{request.name} tests a column; give it under a column.", "e.g. {'column': 'order_id', 'tests': ['unique']}.")
    if kind.level == "model" and request.column:
        raise ToolFailure("invalid_test", f"{request.name} tests the whole model, not column {request.column}.", "Give it under model-level tests.")
    missing = [a for a in kind.required if a not in request.arguments]
    if request.name == "accepted_range" and not ({"min_value", "max_value"} & request.arguments.keys()):
        missing.append("min_value or max_value")
    if missing:
        raise ToolFailure("invalid_test", f"{request.name} needs {', '.join(missing)}.", f"Add them under the test, e.g. {{'{request.name}': {{'{missing[0].split()[0]}': ...}}}}.")
    return kind


def yaml_entry(request: TestRequest, qualified_name: str) -> Any:
    """How the test is written under data_tests: (dbt >= 1.10 form, arguments under `arguments:`)."""
    if not request.arguments and not request.config:
        return qualified_name
    body: dict[str, Any] = {}
    if request.arguments:
        body["arguments"] = dict(request.arguments)
    if request.config:
        body["config"] = dict(request.config)
    return {qualified_name: body}


def same_test(existing: Any, name: str) -> bool:
    """Whether an existing data_tests entry is already this kind of test (so it is replaced, not duplicated)."""
    if isinstance(existing, str):
        return existing.split(".")[-1] == name
    if isinstance(existing, dict) and len(existing) >= 1:
        key = next(iter(existing))
        if key in ("name", "test_name"):
            return str(existing.get("test_name", "")).split(".")[-1] == name
        return str(key).split(".")[-1] == name
    return False
