"""project_metrics: the seed prompt's metrics from dbt's artifacts, the warm manifest and the server's run history.

Each metric says what it was computed from, and is None (with the reason) when that source does not exist yet,
e.g. no freshness check has run. Definitions (the seed names them; these are the choices made for them):
- models_built / models_failed: models whose latest recorded run succeeded / failed (run history).
- build_duration_avg_s / build_duration_p95_s: wall time of the recorded `dbt build` and `dbt run` calls.
- test_pass_rate: share of tests whose latest recorded result is pass (warn counts as not passing).
- data_freshness_sla: share of sources whose latest freshness check (target/sources.json) passed.
- schema_compliance: share of models whose documented columns are exactly the columns their SQL outputs.
- documentation_coverage: share of models with a description, and of their output columns with one.
- incremental_models_ratio: incremental models / models.
- query_efficiency: model execution times of the latest recorded run (mean, p95, slowest five).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server.errors import ToolFailure
from tools.authoring import rules as sql_rules
from tools.authoring.project import ProjectIndex


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * 0.95
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _metric(value: Any, source: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "source": source, **extra}


def compute(root: Path, index: ProjectIndex, history: list[dict[str, Any]], read: Any) -> dict[str, dict[str, Any]]:
    models = [n for n in index.raw.get("nodes", []) if n["resource_type"] == "model" and n["package"] == index.project_name]
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
    compliant, described, columns, documented_columns = 0, 0, 0, 0
    for model in models:
        text = read(root / model["path"]) or ""
        try:
            shape = sql_rules.parse_sql(text, index.dialect)
            outputs = [] if shape.star else shape.columns
        except ToolFailure:
            outputs = []
        documented = set(model.get("documented_columns", []))
        if outputs and set(model.get("columns", [])) == set(outputs):
            compliant += 1
        described += bool(model.get("description"))
        columns += len(outputs)
        documented_columns += sum(c in documented for c in outputs)
    count = len(models) or 1
    out["schema_compliance"] = _metric(round(compliant / count, 4) if models else None, "manifest + model SQL (documented columns == output columns)")
    out["documentation_coverage"] = _metric(round(described / count, 4) if models else None, "manifest",
                                            columns=round(documented_columns / columns, 4) if columns else None)
    incremental = sum(m["config"].get("materialized") == "incremental" for m in models)
    out["incremental_models_ratio"] = _metric(round(incremental / count, 4) if models else None, "manifest", incremental=incremental, models=len(models))
    last = next((r for r in reversed(history) if r["command"] in ("build", "run")), None)
    times = [(n["s"], n["id"]) for n in (last or {}).get("nodes", []) if n["type"] == "model"]
    out["query_efficiency"] = _metric(
        round(sum(t for t, _ in times) / len(times), 4) if times else None, "run history (latest dbt build / run): mean model execution seconds",
        p95_s=round(_p95([t for t, _ in times]), 4) if times else None, slowest=[{"model": m, "s": t} for t, m in sorted(times, reverse=True)[:5]],
    )
    return out
