"""describe.dict_delta / apply_dict_delta (the worker sends the server only what changed in the manifest summary):
for any two dicts, the delta applied to the old one gives the new one, key order included. Property-based."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.dbt.engine.describe import apply_dict_delta, dict_delta

keys = st.sampled_from([f"model.p.m{i}" for i in range(12)])
values = st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.sampled_from("ab"), st.integers(0, 2), max_size=2))


@settings(max_examples=300, deadline=None)
@given(old=st.dictionaries(keys, values, max_size=10), new=st.dictionaries(keys, values, max_size=10))
def test_a_delta_applied_gives_the_new_dict_in_its_order(old: dict, new: dict) -> None:
    delta = json.loads(json.dumps(dict_delta(old, new)))  # as it crosses the pipe
    merged = apply_dict_delta(old, delta)
    assert merged == new and list(merged) == list(new)


def test_unchanged_entries_are_not_sent_and_stay_the_old_objects() -> None:
    entry = {"name": "a", "columns": ["x"]}
    old = {"model.p.a": entry, "model.p.b": {"name": "b"}}
    new = {"model.p.a": entry, "model.p.b": {"name": "b2"}}
    delta = dict_delta(old, new)
    assert delta == {"set": {"model.p.b": {"name": "b2"}}, "drop": []}
    assert apply_dict_delta(old, delta)["model.p.a"] is entry
