"""Issue 17, `project_check` after a one-line edit: what the edit path skips must not change what it answers.

- The worker re-parses with dbt's ManifestLoader directly (incremental.parse_in_place), its file reads cached
  (parse_io.py) and what unchanged objects gave kept (parse_memo.py): the manifest must be the one a fresh
  `dbt parse` makes, for SQL, YAML, macro, new-file and deleted-file edits; a project config edit takes the command.
- The column service compiles through dbt's Compiler (compile_op.py): the SQL must be what `dbt compile` gives.
- The artifacts are written once the worker is idle (ArtifactWriter.defer): stale until then, marked pending.
- project_check reads files through a StatReader and keys models by their inputs (checks.CheckCache).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from conftest import REPO, ok, serve_args, server_environment

MART = "models/marts/dim_products.sql"
SNEAKY_MACRO = """{% macro sneaky() %}{% do run_query("create table main.sneaky as select 1 as x") %}{% endmacro %}\n"""


def projection(manifest) -> dict:
    """What the tools read of a manifest: every node's code, checksum, edges, docs, columns and config."""
    out = {}
    for uid, node in {**manifest.nodes, **manifest.sources, **manifest.exposures}.items():
        config = getattr(node, "config", None)
        out[uid] = (
            getattr(node, "raw_code", None), getattr(getattr(node, "checksum", None), "checksum", None),
            sorted(getattr(getattr(node, "depends_on", None), "nodes", []) or []), getattr(node, "description", None),
            sorted((getattr(node, "columns", None) or {}).items(), key=lambda kv: kv[0]).__repr__(),
            getattr(config, "materialized", None), getattr(node, "relation_name", None), getattr(node, "patch_path", None),
        )
    return out


@pytest.mark.e2e
def test_a_direct_in_place_parse_is_the_parse_dbt_makes(built_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt.adapters.factory import FACTORY
    from dbt.cli.main import dbtRunner
    from dbt.flags import get_flags

    from tools.dbt.engine.incremental import install, parse_in_place

    project = tmp_path / "edited"
    shutil.copytree(built_shop, project)
    past = time.time_ns() - 10**10  # older than parse_io's two seconds: unchanged files' SourceFiles are handed out again
    for file in project.rglob("*"):
        if file.is_file():
            os.utime(file, ns=(past, past))
    monkeypatch.chdir(project)
    install()
    base = ["--quiet", "parse", "--project-dir", str(project), "--profiles-dir", str(project)]
    first = dbtRunner().invoke([*base, "--no-write-json"])
    assert first.success, first.exception
    manifest, flags = first.result, get_flags()
    config = next(iter(FACTORY.adapters.values())).config
    new_model = project / "models/marts/dim_product_names.sql"
    edits = [
        ("sql", lambda: (project / MART).write_text((project / MART).read_text() + "\n-- edited\n")),
        ("new ref", lambda: (project / MART).write_text((project / MART).read_text().replace(
            "with products as (", "with customers as (\n    select * from {{ ref('stg_customers') }}\n),\n\nproducts as (", 1))),
        ("yaml", lambda: (project / "models/marts/_marts.yml").write_text(
            (project / "models/marts/_marts.yml").read_text().replace("Primary key of the order.", "The order's key.", 1))),
        ("macro", lambda: (project / "macros/cents_to_dollars.sql").write_text((project / "macros/cents_to_dollars.sql").read_text() + "\n{# e #}\n")),
        ("new file", lambda: new_model.write_text("select product_id, product_name from {{ ref('stg_products') }}\n")),
        ("same size rewrite at once", lambda: new_model.write_text("select product_id, product_nam2 from {{ ref('stg_products') }}\n")),
        ("deleted file", lambda: new_model.unlink()),
    ]
    for label, edit in edits:
        edit()
        parsed = parse_in_place(manifest, config, flags)
        assert parsed is manifest, f"{label}: dbt parsed from scratch instead of in place"
        fresh = dbtRunner().invoke([*base, "--no-write-json", "--no-partial-parse"])
        assert fresh.success, fresh.exception
        ours, theirs = projection(parsed), projection(fresh.result)
        assert ours.keys() == theirs.keys(), (label, ours.keys() ^ theirs.keys())
        assert {u: v for u, v in ours.items() if theirs[u] != v} == {}, label
    assert "model.shop.stg_customers" in manifest.nodes["model.shop.dim_products"].depends_on.nodes
    # the adapter's query comment is kept across in-place re-parses (parse_memo.query_headers), and is still dbt's
    edits[0][1]()
    assert parse_in_place(manifest, config, flags) is manifest  # (the fresh parses above registered a new adapter)
    adapter = next(iter(FACTORY.adapters.values()))
    header = adapter.connections.query_header
    edits[0][1]()
    assert parse_in_place(manifest, config, flags) is manifest and adapter.connections.query_header is header
    assert '"app": "dbt"' in header.add("select 1") and '"connection_name": "master"' in header.add("select 1")
    # the parent and child maps (our build_node_edges) are dbt's
    from tools.dbt.engine import parse_memo

    members = [*manifest.nodes.values(), *manifest.sources.values(), *manifest.exposures.values()]
    assert parse_memo.build_node_edges(members) == parse_memo._replaced["build_node_edges"](members)
    assert parse_memo.resource_fqns(manifest) == parse_memo._replaced["get_resource_fqns"](manifest)
    # unchanged files' SourceFiles were handed out again (parse_io.get_source_files)...
    from tools.dbt.engine import parse_io

    assert len(parse_io._sources) > 10
    # ...but none is after a full parse, which fills the ones it was given: overriding a generate_ macro makes dbt
    # parse everything again (skip_partial_parsing_because_of_macros)
    (project / "macros/generate_alias_name.sql").write_text(
        "{% macro generate_alias_name(custom_alias_name=none, node=none) -%}{{ custom_alias_name or node.name }}{%- endmacro %}\n")
    whole = parse_in_place(manifest, config, flags)
    assert whole is not manifest and not parse_io._sources
    for label, edit in [("sql after a full parse", edits[0][1]), ("yaml after a full parse", edits[2][1])]:
        edit()
        manifest = whole
        whole = parse_in_place(manifest, config, flags)
        assert whole is manifest, f"{label}: dbt parsed from scratch instead of in place"
        fresh = dbtRunner().invoke([*base, "--no-write-json", "--no-partial-parse"])
        assert fresh.success, fresh.exception
        ours, theirs = projection(whole), projection(fresh.result)
        assert ours == theirs, label
    # a duplicate relation name is still refused (dbt's uniqueness check, its relation names now kept per node)
    (project / "models/marts/dim_products_copy.sql").write_text("{{ config(alias='dim_products') }}\nselect 1 as id\n")
    with pytest.raises(Exception, match="dim_products"):
        parse_in_place(manifest, config, flags)


def test_parse_io_finds_and_reads_what_dbt_would(built_shop: Path) -> None:
    import pathspec
    from dbt_common.clients.system import find_matching, load_file_contents

    from tools.dbt.engine import parse_io

    root = str(built_shop)
    (built_shop / "models/marts/.#lock.sql").write_text("x")  # an editor's lock file: the pattern skips it
    spec = pathspec.PathSpec.from_lines(pathspec.patterns.GitWildMatchPattern, ["models/staging/stg_orders.sql"])
    with parse_io.reading():
        for dirs, pattern, ignore in [(["models"], "[!.#~]*.sql", None), (["models", "macros"], "[!.#~]*.yml", None),
                                      (["models"], "[!.#~]*.sql", spec), (["seeds"], "[!.#~]*.csv", None), (["no_such"], "*.sql", None)]:
            assert parse_io.find_matching(root, dirs, pattern, ignore) == find_matching(root, dirs, pattern, ignore), (dirs, pattern)
        path = str(built_shop / MART)
        assert parse_io.load_file_contents(path) == load_file_contents(path)
        # rewritten at once with the same size: mtime may stay within one clock tick, the text must not
        Path(path).write_text("select 1 as a\n")
        assert parse_io.load_file_contents(path) == "select 1 as a"
        Path(path).write_text("select 2 as a\n")
        assert parse_io.load_file_contents(path) == "select 2 as a"
        assert parse_io.load_file_contents(path, strip=False) == "select 2 as a\n"
        # an old, unchanged file is served from memory: the same str, whose checksum is kept
        old = built_shop / "models/staging/stg_orders.sql"
        os.utime(old, ns=(time.time_ns() - 10**10, time.time_ns() - 10**10))
        first = parse_io.load_file_contents(str(old))
        assert parse_io.load_file_contents(str(old)) is first
        from dbt.parser import read_files

        parse_io.install()
        assert read_files.FileHash.from_contents(first) is read_files.FileHash.from_contents(first)
        assert read_files.FileHash.from_contents(first).checksum == read_files.FileHash.file_hash.from_contents(first).checksum


def test_a_kept_listing_is_the_walk_dbt_makes(built_shop: Path, tmp_path: Path) -> None:
    """parse_io.matching gives the last listing of a search again while its folders are unchanged: after files are
    added, removed, renamed and new folders made, it must still be dbt's find_matching."""
    from dbt_common.clients.system import find_matching

    from tools.dbt.engine import parse_io

    project = tmp_path / "listed"
    shutil.copytree(built_shop, project)
    root = str(project)

    def age() -> None:  # older than the two seconds under which a folder's listing is not kept
        past = time.time_ns() - 10**10
        for folder in [project, *[p for p in project.rglob("*") if p.is_dir()]]:
            os.utime(folder, ns=(past, past))

    changes = [
        lambda: None,
        lambda: (project / "models/marts/added.sql").write_text("select 1 as a\n"),
        lambda: (project / "models/marts/added.sql").unlink(),
        lambda: (project / "models/staging/stg_orders.sql").rename(project / "models/staging/stg_orders_v2.sql"),
        lambda: (project / "models/deeper/still").mkdir(parents=True),
        lambda: (project / "models/deeper/still/new.sql").write_text("select 2 as b\n"),
        lambda: (project / "analyses").mkdir(exist_ok=True),
    ]
    searches = [(["models"], "[!.#~]*.sql"), (["models", "macros"], "[!.#~]*.yml"), (["analyses"], "[!.#~]*.sql")]
    for n, change in enumerate(changes):
        change()
        for attempt in ("just changed", "aged", "kept"):
            if attempt == "aged":
                age()
            with parse_io.reading():
                for dirs, pattern in searches:
                    assert parse_io.matching(root, dirs, pattern) == find_matching(root, dirs, pattern), (n, attempt, dirs, pattern)
        assert parse_io._listings, "no listing was kept"


def test_the_change_check_sees_past_a_dangling_lock_file(tmp_path: Path) -> None:
    """invocation.project_fingerprint: one file it cannot stat (Emacs's `.#x.sql` lock, a dangling symlink) hides no
    other file of its folder; `.dbtignore` is watched too."""
    from tools.dbt.engine.invocation import project_fingerprint

    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    for name in ("a.sql", "b.sql", "sub/c.sql"):
        (models / name).write_text("select 1 as a\n")
    os.symlink("someone@host.1234:1", models / ".#a.sql")
    (tmp_path / ".dbtignore").write_text("models/b.sql\n")
    before = project_fingerprint(tmp_path, tmp_path)
    assert {Path(p).name for p, *_ in before} >= {"a.sql", "b.sql", "c.sql", ".dbtignore"}
    (tmp_path / ".dbtignore").write_text("models/a.sql\nmodels/sub/\n")  # another size: the same clock tick may keep mtime
    assert project_fingerprint(tmp_path, tmp_path) != before


def test_a_stat_reader_sees_every_change(tmp_path: Path) -> None:
    from tools.authoring.files import StatReader

    read = StatReader()
    path = tmp_path / "m.sql"
    assert read(path) is None
    path.write_text("select 1")
    assert read(path) == "select 1"
    path.write_text("select 2")  # same size, same clock tick: still seen
    assert read(path) == "select 2"
    os.utime(path, ns=(time.time_ns() - 10**10, time.time_ns() - 10**10))
    kept = read(path)
    assert read(path) is kept
    path.unlink()
    assert read(path) is None


def test_the_check_cache_keys_on_every_input() -> None:
    from tools.quality.checks import CheckCache

    cache = CheckCache()
    model = {"unique_id": "m", "description": ""}
    inputs = ("select 1", model, (("p", "model", "x.sql"),), "duckdb", (None, None, None))
    key = cache.key("m", inputs)
    assert cache.key("m", inputs) == key
    assert cache.key("m", ("select 1", dict(model), (("p", "model", "x.sql"),), "duckdb", (None, None, None))) == key
    changed = [("select 2", model, inputs[2], "duckdb", inputs[4]), ("select 1", {**model, "description": "d"}, inputs[2], "duckdb", inputs[4]),
               ("select 1", model, (), "duckdb", inputs[4]), ("select 1", model, inputs[2], "postgres", inputs[4]),
               ("select 1", model, inputs[2], "duckdb", (("a",), False, 1)), (*inputs, {"test": 1})]
    assert len({cache.key("m", c) for c in changed} | {key}) == len(changed) + 1


def test_node_edges_are_dbts_after_any_change() -> None:
    """parse_memo.NodeEdges (the parent and child maps from what changed) against dbt's build_node_edges, key order
    included, over random graphs changed in every way a re-parse changes them."""
    import random

    from dbt.contracts.graph.manifest import build_node_edges as dbts

    from tools.dbt.engine.parse_memo import NodeEdges

    class Node:
        def __init__(self, uid: str, parents: list[str]) -> None:
            self.unique_id, self.depends_on_nodes = uid, parents

    rng = random.Random(17)
    for trial in range(200):
        edges = NodeEdges()
        uids = [f"n{i}" for i in range(rng.randint(0, 30))]
        nodes = [Node(u, [rng.choice([*uids, "outside"]) for _ in range(rng.randint(0, 4))]) for u in uids]
        for step in range(12):
            ours, theirs = edges(nodes), dbts(nodes)
            assert [list(m.items()) for m in ours] == [list(m.items()) for m in theirs], (trial, step)
            change, names = rng.random(), [n.unique_id for n in nodes]
            if change < 0.3 and nodes:  # process_refs appends in place
                rng.choice(nodes).depends_on_nodes.append(rng.choice([*names, "outside"]))
            elif change < 0.5 and nodes:  # re-parsed: a new object at the end, other parents
                old = nodes.pop(rng.randrange(len(nodes)))
                nodes.append(Node(old.unique_id, [rng.choice(names) for _ in range(rng.randint(0, 3))]))
            elif change < 0.65 and nodes:  # deleted
                nodes.pop(rng.randrange(len(nodes)))
            elif change < 0.8:  # added
                nodes.insert(rng.randrange(len(nodes) + 1), Node(f"new{trial}.{step}", [rng.choice([*names, "outside"])]))
            elif nodes:
                rng.choice(nodes).depends_on_nodes.clear()


def test_a_kept_topological_order_is_the_one_made_again() -> None:
    """column_model.topological with a kept order (infer's `recent`) answers what sorting again answers."""
    import random

    from tools.lineage.column_model import NodeFacts, _topological, topological

    rng = random.Random(5)
    for trial in range(200):
        held: dict = {}
        uids = [f"m{i}" for i in range(rng.randint(0, 25))]
        nodes = {u: NodeFacts(u, "model", parents=[rng.choice([*uids, "x"]) for _ in range(rng.randint(0, 3))]) for u in uids}
        for step in range(10):
            assert topological(nodes, held) == _topological(nodes), (trial, step)
            change, names = rng.random(), list(nodes)
            if change < 0.3 and names:  # an edit: new facts, the same parents
                u = rng.choice(names)
                nodes[u] = NodeFacts(u, "model", parents=list(nodes[u].parents))
            elif change < 0.5 and names:  # other parents
                u = rng.choice(names)
                nodes[u] = NodeFacts(u, "model", parents=[rng.choice(names)])
            elif change < 0.6 and names:
                del nodes[rng.choice(names)]
            elif change < 0.75:
                nodes[f"n{trial}.{step}"] = NodeFacts(f"n{trial}.{step}", "model", parents=names[:1])
            elif names:  # moved to the end (re-parsed)
                u = rng.choice(names)
                nodes[u] = nodes.pop(u)


def test_the_worker_line_reader() -> None:
    from tools.dbt.engine.line_reader import LineReader

    read_fd, write_fd = os.pipe()
    lines = LineReader(read_fd)
    assert lines.readline(0.05) is None and not lines.waiting()
    os.write(write_fd, b'{"a": 1}\n{"b"')
    assert lines.waiting()
    assert lines.readline(1) == '{"a": 1}\n'
    assert lines.readline(0.05) is None  # half a line: not a request yet
    assert lines.waiting()  # (its first half: the rest is coming)
    os.write(write_fd, b': 2}\n')
    assert lines.readline(None) == '{"b": 2}\n'
    os.write(write_fd, b"tail")
    os.close(write_fd)
    assert lines.readline(None) == "tail\n"
    assert lines.readline(None) == ""
    os.close(read_fd)


@contextlib.asynccontextmanager
async def logged_session(project: Path, data_dir: Path, log: Path):
    params = StdioServerParameters(command=os.sys.executable, args=serve_args(project, data_dir, "--toolsets", "dbt,quality,lineage"),
                                   cwd=str(REPO), env=server_environment())
    with log.open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None) as client:
            yield client


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.e2e
async def test_the_edit_path_over_mcp(built_shop: Path, data_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.err"
    target = built_shop / "target"
    pending = target / "manifest.json.pending"
    mart = built_shop / MART
    original = mart.read_text()
    async with logged_session(built_shop, data_dir, log) as client:
        ok(await client.call_tool("project_check", {}))
        # -- one edit: parsed in place without a dbt command; the artifacts wait until the worker is idle, then follow
        mart.write_text(original.replace("with products as (", "with customers as (\n    select * from {{ ref('stg_customers') }}\n),\n\nproducts as (", 1))
        ok(await client.call_tool("project_check", {}))
        assert "(in memory, directly)" in log.read_text(), log.read_text()[-3000:]
        wait_for(lambda: not pending.exists())
        manifest = json.loads((target / "manifest.json").read_text())
        assert "model.shop.stg_customers" in manifest["parent_map"]["model.shop.dim_products"]
        # -- a project config edit: a dbt command parses (the RuntimeConfig it reads must be read again)
        directly = log.read_text().count("(in memory, directly)")
        project_yml = built_shop / "dbt_project.yml"
        project_yml.write_text(project_yml.read_text() + "\n# edited\n")
        ok(await client.call_tool("project_check", {}))
        assert log.read_text().count("(in memory, directly)") == directly
        # -- a parse that fails right after an edit's deferred write: that write (the manifest dbt changed half way)
        #    never reaches disk, so the next parse from disk still finds the broken model broken
        mart.write_text(original + "\n-- edited again\n")
        ok(await client.call_tool("project_check", {}))
        assert pending.exists(), "the write was not deferred"
        broken = built_shop / "models/marts/fct_orders.sql"
        fine = broken.read_text()
        broken.write_text(fine.replace("ref('int_order_totals')", "ref('no_such_model')", 1))  # fails as refs resolve, last
        failed = await client.call_tool("project_check", {})
        assert failed.is_error, failed
        assert not pending.exists()
        again = await client.call_tool("project_check", {})
        assert again.is_error, "the broken model parsed: a half-parsed manifest reached disk"
        on_disk = json.loads((target / "manifest.json").read_text())["nodes"]["model.shop.fct_orders"]
        assert "model.shop.int_order_totals" in on_disk["depends_on"]["nodes"], "a half-parsed manifest reached disk"
        broken.write_text(fine)
        # -- the edited model was compiled ahead (compile_op.compile_ahead), right after the describe's reply, and
        #    the column model's compile took it; one whose Jinja runs a statement is refused there as in the request
        assert "compiled 1 ahead" in log.read_text() and "took 1 of 1 compiled ahead" in log.read_text(), log.read_text()[-3000:]
        (built_shop / "macros" / "sneaky.sql").write_text(SNEAKY_MACRO)
        ok(await client.call_tool("project_check", {}))  # (a macro file: a dbt command parses, nothing is compiled ahead)
        ahead = log.read_text().count("compiled 1 ahead")
        mart.write_text(original.replace("from products", "from products {{ sneaky() }}", 1))
        assert "{{ sneaky() }}" in mart.read_text()
        ok(await client.call_tool("project_check", {}))
        assert log.read_text().count("compiled 1 ahead") == ahead, "a refused statement's compile was kept"
        assert "compiling ahead stopped at model.shop.dim_products: it is a CREATE statement" in log.read_text(), log.read_text()[-3000:]
        traced = ok(await client.call_tool("column_lineage", {"model": "dim_products", "column": "product_id"}))
        assert "did not compile: A statement was refused" in json.dumps(traced["unresolved"]), traced
        mart.write_text(original)
        (built_shop / "macros" / "sneaky.sql").unlink()
        # -- after a zero-row run (--empty: dbt compiles refs to empty subqueries), the column model's SQL is not that
        built = ok(await client.call_tool("dbt_run", {"select": "stg_orders", "empty": True}))
        assert built["success"] is True, built
        mart.write_text(original + "\n-- and again\n")
        ok(await client.call_tool("project_check", {}))
        # -- the SQL the column model compiled (dbt's Compiler) is what `dbt compile` gives
        models = sorted(p.stem for p in (built_shop / "models").rglob("*.sql"))
        compiled = {n["unique_id"]: n.get("compiled_sql") for n in ok(await client.call_tool("dbt_compile", {"select": " ".join(models)}))["nodes"]}
    kept = json.loads(next((data_dir / "columns").glob("*.json")).read_text())
    store = kept["compiled"]
    # whether stars reach relations, as the worker answered it ahead for edited models or the server itself
    import hashlib

    from tools.lineage.column_model import stars_reaching_relations

    answered = {uid: kept["stars"].get(hashlib.sha256(f"duckdb\0{entry[1]}".encode()).hexdigest()) for uid, entry in store.items() if entry[1]}
    assert sum(v is not None for v in answered.values()) > 8
    assert all(v is None or v == stars_reaching_relations(store[uid][1], "duckdb") for uid, v in answered.items())
    assert len(compiled) == len(models) > 8
    for uid, sql in compiled.items():
        assert store[uid][1] is not None, (uid, store[uid])
        assert store[uid][1].strip() == sql.strip(), uid
    assert "limit 0" not in store["model.shop.dim_products"][1], store["model.shop.dim_products"][1]
    import duckdb

    with duckdb.connect(str(built_shop / "shop.duckdb"), read_only=True) as db:
        assert not db.execute("select * from information_schema.tables where table_name = 'sneaky'").fetchall()


def test_the_models_compiled_ahead_are_the_edited_ones() -> None:
    from tools.dbt.engine.compile_op import AHEAD_AT_MOST, models_to_compile_ahead

    def entry(checksum: str, kind: str = "model", package: str = "p") -> dict:
        return {"resource_type": kind, "checksum": checksum, "package_name": package}

    before = {"model.p.a": entry("1"), "model.p.b": entry("2")}
    changed = {"model.p.a": entry("1"),  # only its YAML changed: it compiles the same
               "model.p.b": entry("3"), "model.p.new": entry("4"), "test.p.t": entry("5", "test"),
               "snapshot.p.s": entry("6", "snapshot"),  # a check compiles a snapshot only when a model reads it
               "model.dep.m": entry("7", package="dep")}  # nor a package's model
    assert models_to_compile_ahead(before, changed, "p") == ["model.p.b", "model.p.new"]
    many = {f"model.p.m{i}": entry(str(i)) for i in range(40)}
    assert len(models_to_compile_ahead({}, many, "p")) == AHEAD_AT_MOST
