"""tools/authoring/journal.py: a change written by a process that died before dbt validated it is undone at the next
start; a file changed since is left and named; a live process's record is not touched. Real files, a real process
that ended (its pid), no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.authoring.files import FileChange, apply, planned_bytes
from tools.authoring.journal import RECORD_SUFFIX, ChangeJournal, process_started


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_an_interrupted_change_is_undone_and_a_later_edit_kept(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    edited, removed, touched = root / "models/a.sql", root / "models/gone.sql", root / "models/b.sql"
    edited.write_text("select 1 as a\n")
    removed.write_text("select 2 as g\n")
    touched.write_text("select 3 as b\n")
    created = root / "models/new/c.sql"
    journal = ChangeJournal(tmp_path / "data" / "authoring" / "p", root)
    changes = [FileChange(edited, "select 10 as a\n"), FileChange(removed, None), FileChange(touched, "select 30 as b\n"),
               FileChange(created, "select 4 as c\n")]
    record = journal.begin("dbt_model", planned_bytes(changes))
    assert record is not None and journal.recover() == []  # this process is alive: its record is not touched
    apply(changes)
    touched.write_text("select 31 as b -- a person's edit\n")

    entry = json.loads(record.read_text())
    entry["pid"] = dead_pid()  # the writer died before dbt answered
    record.write_text(json.dumps(entry))
    report = ChangeJournal(journal.folder, root).recover()

    assert edited.read_text() == "select 1 as a\n" and removed.read_text() == "select 2 as g\n" and not created.exists()
    assert touched.read_text() == "select 31 as b -- a person's edit\n"
    assert len(report) == 1 and "dbt_model" in report[0] and "interrupted before dbt validated it" in report[0]
    assert "put back: models/a.sql, models/gone.sql, models/new/c.sql" in report[0]
    assert "changed since, left as they are: models/b.sql" in report[0]
    assert journal.records() == []


def test_an_answered_change_leaves_no_record_and_each_call_has_its_own(tmp_path: Path) -> None:
    """One file per call: a finished call's record cannot be brought back by another process's rewrite."""
    root = tmp_path / "project"
    root.mkdir()
    journal = ChangeJournal(tmp_path / "j", root)
    first = journal.begin("file_write", {root / "x.sql": b"select 1\n"})
    other = journal.begin("dbt_model", {root / "y.sql": b"select 2\n"})
    journal.end(first)
    assert journal.records() == [other]
    journal.end(other)
    assert journal.records() == []


def test_the_same_pid_in_a_new_process_is_dead_and_records_roll_back_newest_first(tmp_path: Path) -> None:
    """A container's server is pid 1 on every start: the start time tells the processes apart. Two interrupted calls
    on one file: the newer is undone first, then the older, back to the very first content."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    model = root / "models" / "m.sql"
    model.write_text("v0\n")
    journal = ChangeJournal(tmp_path / "j", root)
    for version in ("v1\n", "v2\n"):
        record = journal.begin("file_write", {model: version.encode()})
        apply([FileChange(model, version)])
        entry = json.loads(record.read_text())
        assert entry["pid"] == os.getpid() and entry["started"] == process_started(os.getpid())
        entry["started"] = "1"  # this pid, but an earlier process
        record.write_text(json.dumps(entry))
    report = journal.recover()
    assert model.read_text() == "v0\n" and len(report) == 2 and journal.records() == []


def test_a_record_pointing_outside_the_project_is_kept_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    journal = ChangeJournal(tmp_path / "j", root)
    journal.folder.mkdir()
    (journal.folder / f"1{RECORD_SUFFIX}").write_text(json.dumps(
        {"pid": dead_pid(), "tool": "x", "at": 0, "files": {"../outside.txt": {"before": None, "after": None}}}))
    assert journal.recover() == [] and outside.read_text() == "keep\n" and len(journal.records()) == 1
