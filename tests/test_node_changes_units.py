"""model_update's config() editing and node_properties' YAML dump, as pure functions (tools/files/node_changes.py)."""

from __future__ import annotations

import pytest

from server.errors import ToolFailure
from tools.authoring import yaml_props
from tools.files.node_changes import dump_keeping, find_config, set_config


def edit(sql: str, config: dict) -> str:
    block = find_config(sql)
    assert block is not None
    return set_config(sql, block, config, "m.sql")


def test_config_keys_are_set_in_place_and_added_like_the_others() -> None:
    sql = "{{ config(materialized='view', tags=['a', 'b)']) }}\nselect 1 as x\n"
    assert edit(sql, {"materialized": "table"}) == "{{ config(materialized='table', tags=['a', 'b)']) }}\nselect 1 as x\n"
    assert edit(sql, {"tags": [], "enabled": False}) == "{{ config(materialized='view', tags=[], enabled=false) }}\nselect 1 as x\n"
    multi = "{{\n    config(\n        materialized='view',\n        schema='x'\n    )\n}}\nselect 1\n"
    assert edit(multi, {"materialized": "table", "tags": ["é"]}) == (
        "{{\n    config(\n        materialized='table',\n        schema='x',\n        tags=['é']\n    )\n}}\nselect 1\n")
    assert edit("{{ config() }}\nselect 1\n", {"a": 1}) == "{{ config(a=1) }}\nselect 1\n"
    assert find_config("select 1 as config\n") is None


@pytest.mark.parametrize("sql", ["{{ config(**cfg) }}", "{{ config({'materialized': 'view'}) }}", "{{ config(a=1 ~ 'x') }}"])
def test_a_block_that_is_not_plain_keywords_is_refused(sql: str) -> None:
    with pytest.raises(ToolFailure) as failure:
        edit(sql + "\nselect 1\n", {"a": 1})
    assert failure.value.code == "config_not_editable"


def test_dump_keeps_explicit_nulls_it_did_not_touch() -> None:
    before = "sources:\n  - name: raw  # the raw tables\n    config:\n      freshness: null\n    tables:\n      - name: a\n"
    doc = yaml_props.load(before, "x.yml")
    doc.data["sources"][0]["tables"][0]["description"] = "A."
    assert dump_keeping(doc, before) == before + "        description: A.\n"
