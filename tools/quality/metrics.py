"""project_metrics: the seed prompt's metrics from dbt's artifacts, the warm manifest and the server's run history.

Each metric says what it was computed from, and is None (with the reason) when that source does not exist yet,
e.g. no freshness check has run. Definitions (the seed names them; these are the choices made for them):
- models_built / models_failed: models whose latest recorded run succeeded / failed (run history).
- build_duration_avg_s / build_duration_p95_s: wall time of the recorded `dbt build` and `dbt run` calls.
- test_pass_rate: share of tests whose latest recorded result is pass (warn counts as not passing).
- data_freshness_sla: share of sources whose latest freshness check (target/sources.json) passed.
- schema_compliance: share of models with an explicit select (the seed's definition): no star reaches a relation
  whose columns no select of the model lists (`select * from final` after an explicit `final` is explicit).
- documentation_coverage: share of models with a description, and of their real output columns (the column model:
  compiled SQL with stars expanded, else the database) with one.
- incremental_models_ratio: incremental models / models.
- query_efficiency: the seed's average compiled SQL lines per model (longest five listed).
- model_execution_s: model execution times of the latest recorded run (mean, p95, slowest five).
- downstream_impact: models skipped because an upstream node failed, in the latest recorded build/run.
- mttr_test_failures: mean seconds from a test's failing run to its next passing run (run history).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.authoring.project import ProjectIndex
from tools.quality.checks import ModelColumns


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * 0.95
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _metric(value: Any, source: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "source": source, **extra}


def per_model(index: ProjectIndex, facts: dict[str, ModelColumns]) -> list[dict[str, Any]]:
    out = []
    for model in sorted(_models(index), key=lambda m: m["name"]):
        f = facts.get(model["unique_id"], ModelColumns(None, None))
        documented = {c.lower() for c in model.get("documented_columns", [])}
        row: dict[str, Any] = {"model": model["name"], "described": bool(model.get("description")), "explicit": f.explicit,
                               "compiled_lines": f.compiled_lines}
        if f.outputs is not None:
            row |= {"columns": len(f.outputs), "documented": sum(c.lower() in documented for c in f.outputs),
                    "undocumented": [c for c in f.outputs if c.lower() not in documented]}
        else:
            row["columns"] = None
        out.append(row)
    return out


def _models(index: ProjectIndex) -> list[dict[str, Any]]:
    return [n for n in index.raw.get("nodes", []) if n["resource_type"] == "model" and n["package"] == index.project_name]


def _mttr(history: list[dict[str, Any]]) -> tuple[float | None, int]:
    """Mean seconds from a test's first failing run to its next passing run, and how many such repairs there were."""
    failing_since: dict[str, float] = {}
    repairs: list[float] = []
    for run in history:
        for node in run.get("nodes", []):
            if node.get("type") != "test":
                continue
            if node["status"] in ("fail", "error"):
                failing_since.setdefault(node["id"], run["at"])
            elif node["status"] == "pass" and node["id"] in failing_since:
                repairs.append(run["at"] - failing_since.pop(node["id"]))
    return (round(sum(repairs) / len(repairs), 3) if repairs else None), len(repairs)


def compute(root: Path, index: ProjectIndex, history: list[dict[str, Any]], read: Any,
            facts: dict[str, ModelColumns] | None = None) -> dict[str, dict[str, Any]]:
    models = _models(index)
    model_ids = {m["unique_id"] for m in models}
    test_ids = {n["unique_id"] for n in index.raw.get("nodes", []) if n["resource_type"] == "test"}
    latest: dict[str, str] = {}
    for run in history:
        for node in run.get("nodes", []):
            latest[node["id"]] = node["status"]
    out: dict[str, dict[str, Any]] = {}
    recorded = [m for m in model_ids if m in latest]
    no_history = "no dbt run recorded by this server yet (call dbt_build)"
    out["models_built"] = _metric(sum(latest[m] == "success" for m in recorded) if recorded else None, "run history",
                                  **({} if recorded else {"reason": no_history}), of=len(models))
    out["models_failed"] = _metric(sum(latest[m] in ("error", "runtime error") for m in recorded) if recorded else None, "run history",
                                   **({} if recorded else {"reason": no_history}))
    builds = [r["elapsed_s"] for r in history if r["command"] in ("build", "run")]
    out["build_duration_avg_s"] = _metric(round(sum(builds) / len(builds), 3) if builds else None, "run history (dbt build / run calls)", runs=len(builds))
    out["build_duration_p95_s"] = _metric(round(_p95(builds), 3) if builds else None, "run history (dbt build / run calls)", runs=len(builds))
    tests = [t for t in test_ids if t in latest]
    out["test_pass_rate"] = _metric(round(sum(latest[t] == "pass" for t in tests) / len(tests), 4) if tests else None, "run history",
                                    tests=len(tests), failing=sorted(t for t in tests if latest[t] != "pass")[:20])
    sources_json = root / "target" / "sources.json"
    try:
        results = json.loads(sources_json.read_text()).get("results", [])
        passed = sum(r.get("status") == "pass" for r in results)
        out["data_freshness_sla"] = _metric(round(passed / len(results), 4) if results else None, "target/sources.json", sources=len(results),
                                            stale=sorted(r.get("unique_id") for r in results if r.get("status") != "pass")[:20])
    except (FileNotFoundError, json.JSONDecodeError):
        out["data_freshness_sla"] = _metric(None, "target/sources.json", reason="no freshness check has run (call dbt_source_freshness)")
    facts = facts or {}
    described = sum(bool(m.get("description")) for m in models)
    explicit = [facts[m["unique_id"]].explicit for m in models if m["unique_id"] in facts and facts[m["unique_id"]].explicit is not None]
    columns = documented_columns = 0
    unresolved = []
    for model in models:
        f = facts.get(model["unique_id"])
        if f is None or f.outputs is None:
            unresolved.append(model["name"])
            continue
        documented = {c.lower() for c in model.get("documented_columns", [])}
        columns += len(f.outputs)
        documented_columns += sum(c.lower() in documented for c in f.outputs)
    count = len(models) or 1
    out["schema_compliance"] = _metric(round(sum(explicit) / len(explicit), 4) if explicit else None,
                                       "compiled SQL (models whose selects list the columns they output)", models=len(explicit))
    out["documentation_coverage"] = _metric(round(described / count, 4) if models else None, "manifest + column model",
                                            columns=round(documented_columns / columns, 4) if columns else None,
                                            documented_columns=documented_columns, output_columns=columns,
                                            **({"columns_unresolved": unresolved[:20]} if unresolved else {}))
    incremental = sum(m["config"].get("materialized") == "incremental" for m in models)
    out["incremental_models_ratio"] = _metric(round(incremental / count, 4) if models else None, "manifest", incremental=incremental, models=len(models))
    last = next((r for r in reversed(history) if r["command"] in ("build", "run")), None)
    times = [(n["s"], n["id"]) for n in (last or {}).get("nodes", []) if n["type"] == "model"]
    lines = sorted(((f.compiled_lines, uid) for uid, f in facts.items() if f.compiled_lines is not None), reverse=True)
    out["query_efficiency"] = _metric(round(sum(n for n, _ in lines) / len(lines), 2) if lines else None, "compiled SQL: average lines per model",
                                      longest=[{"model": uid, "lines": n} for n, uid in lines[:5]])
    out["model_execution_s"] = _metric(
        round(sum(t for t, _ in times) / len(times), 4) if times else None, "run history (latest dbt build / run): mean model execution seconds",
        p95_s=round(_p95([t for t, _ in times]), 4) if times else None, slowest=[{"model": m, "s": t} for t, m in sorted(times, reverse=True)[:5]],
    )
    skipped = sorted(n["id"] for n in (last or {}).get("nodes", []) if n["type"] == "model" and n["status"] == "skipped")
    out["downstream_impact"] = _metric(len(skipped) if last else None, "run history (latest dbt build / run): models skipped after an upstream failure",
                                       models=skipped[:20], **({} if last else {"reason": no_history}))
    mttr, repairs = _mttr(history)
    out["mttr_test_failures"] = _metric(mttr, "run history: seconds from a test's failing run to its next passing run", repairs=repairs,
                                        **({} if repairs else {"reason": "no test has failed and then passed in the recorded runs"}))
    return out
