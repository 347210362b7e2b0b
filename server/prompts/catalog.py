"""The prompt texts: the seed prompt's Workflow 1 and 2, Failure Modes 1-3, a data-quality suite and a change review.

Conventions (tests/test_prompts_e2e.py checks them): a tool is named as a call, `tool_name(arg=value, ...)`, with
argument names the tool takes; ${name} is a prompt argument. Every toolset a text names is in its `toolsets`."""

from __future__ import annotations

from server.prompts import Arg, PromptSpec

MODEL_HINT = "A model name in the project, e.g. fct_orders."

INCREMENTAL_FACT = PromptSpec(
    name="incremental_fact_table",
    title="Incremental fact table, end to end",
    description="Build a tested, documented incremental fact model from a staging model (the seed's Workflow 1).",
    args=(
        Arg("model", "Name of the fact model to create, with its layer prefix (fct_...).", required=True, kind="model"),
        Arg("from_model", "The staging or intermediate model it reads, e.g. stg_orders.", required=True, kind="model"),
        Arg("unique_key", "The column that identifies one row, e.g. order_id.", required=True),
        Arg("updated_at", "The column that says when a row last changed (the incremental filter).", default="updated_at"),
        Arg("incremental_strategy", "merge (default), delete+insert or append.", default="merge"),
        Arg("layer", "Folder under models/: marts (default), intermediate.", default="marts", kind="layer"),
    ),
    toolsets=frozenset({"dbt", "authoring", "lineage", "quality", "memory"}),
    writes=True,
    icon="IF",
    text="""
Build the incremental fact model `${model}` from `${from_model}` in the ${layer} layer, keyed on `${unique_key}`,
tested and documented, and prove it with dbt. Work in these steps and stop at the first failure to fix it:

1. Look before writing: `dbt_list(select="+${from_model}")` shows what it depends on, and
   `model_lineage(model="${from_model}")` its neighbours. Check its sources are defined and fresh with
   `dbt_source_freshness(select="+${from_model}")`; a missing source is added with `dbt_source(...)`.
2. Preview the input: `dbt_show(model="${from_model}", limit=10)`. Confirm `${unique_key}` is unique and
   `${updated_at}` is a timestamp: `dbt_show(sql="select count(*), count(distinct ${unique_key}), max(${updated_at}) from {{ ref('${from_model}') }}")`.
3. Create the model with `incremental_model(name="${model}", layer="${layer}", from_ref="${from_model}",
   unique_key="${unique_key}", updated_at="${updated_at}", incremental_strategy="${incremental_strategy}", dry_run=true)`;
   read the generated SQL (explicit columns, no select *; the is_incremental() filter on ${updated_at}), then call it
   again with dry_run=false.
4. Build it twice: `dbt_build(select="${model}", full_refresh=true)`, then `dbt_build(select="${model}")` (the
   incremental run). Both must pass; the second must not add duplicate ${unique_key} values.
5. Test it: `data_quality_test(model="${model}", columns=[...])` with unique and not_null on ${unique_key},
   relationships on every foreign key, accepted_range where a value has bounds; then `dbt_test(select="${model}")`.
6. Check the guardrails: `project_check(path="models/${layer}/${model}.sql")` (incremental logic, keys tested, docs).
7. Document: `dbt_docs(generate=true, select="${model}")`.
8. Remember the configuration for next time: `memory_store(key="dbt-analytics-engineer/<project>/${model}-config",
   value="unique_key=${unique_key}, strategy=${incremental_strategy}, updated_at=${updated_at}")`.

Report what was created, the test counts (PASS/WARN/ERROR) and anything left to do.
""",
)

SCD2_SNAPSHOT = PromptSpec(
    name="scd2_snapshot",
    title="SCD Type 2 snapshot",
    description="Track the history of a table with a dbt snapshot and query it as of a date (the seed's Workflow 2).",
    args=(
        Arg("name", "Name of the snapshot to create, e.g. customers_snapshot.", required=True),
        Arg("relation", "What it snapshots: 'source.table' (e.g. raw.customers), a model name, or source()/ref().",
            required=True, kind="node"),
        Arg("unique_key", "The column that identifies one record, e.g. customer_id.", required=True),
        Arg("strategy", "timestamp (default; needs updated_at) or check (compares check_cols).", default="timestamp"),
        Arg("updated_at", "timestamp strategy: the column that says when a record changed.", default="updated_at"),
        Arg("as_of", "A date to query the history as of, e.g. 2025-10-01.", default="2025-10-01"),
    ),
    toolsets=frozenset({"dbt"}),
    writes=True,
    icon="S2",
    text="""
Create the SCD Type 2 snapshot `${name}` of `${relation}`, keyed on `${unique_key}`, and show its history.

1. Preview the input: `dbt_show(sql="select count(*), count(distinct ${unique_key}) from <the relation>")`, with the
   relation written as {{ source('...', '...') }} or {{ ref('...') }}. The key must be unique before snapshotting.
2. Write and validate the definition without running it: `dbt_snapshot(name="${name}", relation="${relation}",
   unique_key="${unique_key}", strategy="${strategy}", updated_at="${updated_at}", hard_deletes="invalidate", dry_run=true)`.
   With strategy=check, pass check_cols instead of updated_at.
3. Create and run it: the same `dbt_snapshot(...)` call with dry_run=false, then `dbt_snapshot(select="${name}")`.
   The table gains dbt_valid_from and dbt_valid_to.
4. Query it. Current records: `dbt_show(sql="select * from {{ ref('${name}') }} where dbt_valid_to is null")`.
   As of ${as_of}: `dbt_show(sql="select * from {{ ref('${name}') }} where '${as_of}' between dbt_valid_from and
   coalesce(dbt_valid_to, '9999-12-31')")`.
5. Run it again after the source changes (`dbt_snapshot(select="${name}")`): a changed record closes its old version
   (dbt_valid_to set) and opens a new one.

Report the snapshot's path, its row counts (current and historical) and the strategy chosen.
""",
)

QUALITY_SUITE = PromptSpec(
    name="data_quality_suite",
    title="Data-quality suite for a model",
    description="Add the tests a model needs (keys, foreign keys, accepted values, ranges) and prove they pass.",
    args=(
        Arg("model", MODEL_HINT, required=True, kind="model"),
        Arg("primary_key", "Its primary key column (unique, not_null); found from the data when omitted.",
            default="to be found from the data"),
    ),
    toolsets=frozenset({"dbt", "authoring", "quality", "lineage"}),
    writes=True,
    icon="DQ",
    text="""
Give `${model}` a data-quality suite that protects what its consumers rely on.

1. Learn the model: `dbt_compile(select="${model}")` for its SQL and `model_lineage(model="${model}")` for its parents
   and children; `project_check()` lists the guardrails it misses (keys tested, docs) among the project's findings.
2. Find the facts from the data, not guesses: `dbt_show(model="${model}", limit=10)`, and for candidate keys
   `dbt_show(sql="select count(*), count(distinct <column>) from {{ ref('${model}') }}")`. Primary key: ${primary_key}
   (a key's distinct count equals the row count).
3. Add the tests with `data_quality_test(model="${model}", columns=[...], tests=[...])`: unique and not_null on the
   primary key; relationships from each foreign key to its parent model; accepted_values on status-like columns;
   accepted_range on amounts and counts that cannot be negative. Use dry_run=true first and read the YAML.
4. Run them: `dbt_test(select="${model}")`. A failing test shows its failing rows: decide with the data whether the
   test or the model is wrong, fix that one, and run `dbt_test(select="${model}")` again.

Report the tests added per column and the final PASS/WARN/ERROR counts.
""",
)

INCREMENTAL_DUPLICATES = PromptSpec(
    name="recover_incremental_duplicates",
    title="Recover from incremental duplicates",
    description="Find why an incremental model duplicates rows, fix its config, rebuild it and guard it with a test "
                "(the seed's Failure Mode 1).",
    args=(
        Arg("model", "The incremental model with duplicate keys.", required=True, kind="model"),
        Arg("unique_key", "The column that should be unique, e.g. order_id.", required=True),
    ),
    toolsets=frozenset({"dbt", "authoring", "files", "quality"}),
    writes=True,
    icon="D1",
    text="""
The incremental model `${model}` has duplicate `${unique_key}` values (row count growing run after run). Recover it:

1. Measure: `dbt_show(sql="select count(*) as total, count(distinct ${unique_key}) as keys from {{ ref('${model}') }}")`
   and the worst keys: `dbt_show(sql="select ${unique_key}, count(*) as n from {{ ref('${model}') }} group by 1 having
   count(*) > 1 order by n desc")`.
2. Find the cause in its config and SQL: `dbt_compile(select="${model}")` and `file_search(pattern="config(", glob="**/${model}.sql")`.
   Usual causes: no unique_key in config(), incremental_strategy='append', an is_incremental() filter that
   re-reads old rows (>= instead of >, or the wrong column). `project_check(rules=["incremental_missing_unique_key", "incremental_missing_filter"])` flags both.
3. Fix the config: `model_update(name="${model}", config={"unique_key": "${unique_key}", "incremental_strategy": "merge"},
   dry_run=true)`, read the diff, then call it with dry_run=false (validated by dbt, rolled back on failure).
4. Remove the duplicates already stored: `dbt_run(select="${model}", full_refresh=true)`, then run it once more
   incrementally with `dbt_run(select="${model}")` and repeat the count from step 1: total must equal keys.
5. Guard it: `data_quality_test(model="${model}", columns=[{"name": "${unique_key}", "tests": ["unique", "not_null"]}])`
   and `dbt_test(select="${model}")`.

Report the counts before and after, the cause found and the change made.
""",
)

RELATIONSHIP_FAILURES = PromptSpec(
    name="recover_relationship_failures",
    title="Recover from relationship test failures",
    description="Find orphaned foreign keys behind a failing relationships test and fix their cause "
                "(the seed's Failure Mode 2).",
    args=(
        Arg("model", "The child model whose relationships test fails, e.g. fct_orders.", required=True, kind="model"),
        Arg("column", "The foreign key column, e.g. customer_id; read from the failing test when omitted.",
            default="from the failing test"),
        Arg("parent", "The parent model it refers to, e.g. dim_customers.", default="from the failing test", kind="model"),
    ),
    toolsets=frozenset({"dbt", "lineage", "files"}),
    writes=True,
    icon="D2",
    text="""
A relationships test of `${model}` fails (column: ${column}; parent: ${parent}). Recover:

1. See the failure: `dbt_test(select="${model}")`. The failing test names its column and parent, and shows the orphan
   keys it found.
2. Count the orphans: `dbt_show(sql="select f.<column>, count(*) as n from {{ ref('${model}') }} f left join
   {{ ref('<parent>') }} p on f.<column> = p.<key> where p.<key> is null group by 1 order by n desc")`.
3. Decide the cause with the data:
   - The parent is stale (built before the child's new rows arrived): `model_lineage(model="${model}")` shows whether
     ${model} reaches the parent through ref(); if it does not, add the ref so dbt orders them, and rebuild both in
     DAG order with `dbt_build(select="+${model}")`.
   - The keys really are missing upstream: trace them with `column_lineage(model="${model}", column="<column>")` and
     fix the source or staging model that loses them.
   - Orphans are expected (late-arriving dimensions): keep them visible with a left join and a placeholder key,
     or filter them where the business agrees; change the model with `model_update(name="${model}", sql=..., dry_run=true)`.
4. Prove it: `dbt_build(select="+${model}")` must pass with the relationships test included.

Report the orphan count before and after, the cause and the fix.
""",
)

SOURCE_FRESHNESS = PromptSpec(
    name="recover_source_freshness",
    title="Recover from source freshness failures",
    description="Diagnose a stale source: an upstream delay, a wrong loaded_at_field or too tight thresholds "
                "(the seed's Failure Mode 3).",
    args=(
        Arg("select", "Which sources to check, e.g. source:raw or source:raw.orders; all sources when omitted.",
            default="source:*", kind="selector"),
        Arg("upstream_agent", "Who owns the loads upstream; data-pipeline-engineer when omitted.",
            default="data-pipeline-engineer", kind="agent"),
    ),
    toolsets=frozenset({"dbt", "authoring", "files", "delegation"}),
    writes=True,
    icon="D3",
    text="""
Source freshness fails for `${select}`. Find out why before changing anything:

1. Measure: `dbt_source_freshness(select="${select}")`. For each stale source table it names max(loaded_at_field),
   the age and the warn/error thresholds.
2. Check the loaded_at_field is the right column: `file_read(path="models/staging/_sources.yml")` (or find the file
   with `file_search(pattern="loaded_at_field")`), then
   `dbt_show(sql="select max(<loaded_at_field>), count(*) from {{ source('<source>', '<table>') }}")`. A column that
   is never updated, or in another time zone, makes a fresh table look stale.
3. If the data is really late, the cause is upstream: hand it to the pipeline's owner with
   `agent_delegate(to_agent="${upstream_agent}", task="Check the upstream load of <source>.<table>: stale since
   <max loaded_at>", context="thresholds <warn>/<error>; loaded_at_field <column>", priority="high",
   related_nodes=["<source>.<table>"])`, follow it with `task_get(id=<its id>)`, and do not loosen thresholds to hide it.
4. If the thresholds are tighter than the load schedule (e.g. a daily load with error_after 12 hours), change them with
   `dbt_source(name="<source>", freshness={"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 24,
   "period": "hour"}}, dry_run=true)`, then with dry_run=false.
5. Check again: `dbt_source_freshness(select="${select}")`, and `dbt_build(select="${select}+")` for the models that read it.

Report per source table: its age, the cause found, and what was changed (or escalated).
""",
)

REVIEW_CHANGE = PromptSpec(
    name="review_change",
    title="Review a focused change before commit",
    description="Track, measure and prove a change to one model, then commit exactly its files.",
    args=(
        Arg("model", "The model being changed, e.g. fct_orders.", required=True, kind="model"),
        Arg("filepath", "Its file, e.g. models/marts/fct_orders.sql.", required=True, kind="path"),
        Arg("select", "What to build to prove it; the model and everything downstream (${model}+) when omitted.",
            default="${model}+", kind="selector"),
        Arg("message", "The commit message.", default="<a one-line summary of the change>"),
    ),
    toolsets=frozenset({"dbt", "lineage", "quality", "git"}),
    writes=True,
    icon="RC",
    text="""
Review the change to `${model}` (${filepath}) before committing it. Keep the change focused on that model.

1. Before editing (skip if already done): `start_tracking(filepath="${filepath}")` records the baseline.
2. After editing: `analyze_changes(filepath="${filepath}", target="${model}")` gives the diff, a focus score,
   output columns added, removed or renamed, config changes and which downstream models read what changed.
   A low focus score or an unexpected column change means split the change or undo the stray part.
3. Check it against the guardrails: `project_check(path="${filepath}")` and `sql_lint(path="${filepath}")`.
4. Prove it: `dbt_build(select="${select}")`. Every node must pass.
5. See exactly what will be committed: `git_status()` (changed files grouped by dbt node) and
   `git_diff(paths=["${filepath}"])`. Anything outside this change stays out of the commit.
6. Commit only the files of this change: `git_commit(message="${message}", paths=["${filepath}", ...])`, listing the
   YAML file too if the model's properties changed.

Report the focus score, the downstream impact, the build result and the commit.
""",
)

PROMPTS: tuple[PromptSpec, ...] = (INCREMENTAL_FACT, SCD2_SNAPSHOT, QUALITY_SUITE, INCREMENTAL_DUPLICATES,
                                   RELATIONSHIP_FAILURES, SOURCE_FRESHNESS, REVIEW_CHANGE)
