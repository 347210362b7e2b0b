"""tools/authoring/journal.py: a change written by a process that died before dbt validated it is undone at the next
start; a file changed since is left and named; a live process's record is not touched. Real files, a real process
that ended (its pid), no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tools.authoring.files import FileChange, apply, planned_bytes
from tools.authoring.journal import ChangeJournal


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
    journal = ChangeJournal(tmp_path / "data" / "authoring" / "p.pending.json", root)
    changes = [FileChange(edited, "select 10 as a\n"), FileChange(removed, None), FileChange(touched, "select 30 as b\n"),
               FileChange(created, "select 4 as c\n")]
    token = journal.begin("dbt_model", planned_bytes(changes))
    assert token is not None and journal.recover() == []  # this process is alive: its record is not touched
    apply(changes)
    touched.write_text("select 31 as b -- a person's edit\n")

    entries = json.loads(journal.path.read_text())
    entries[token]["pid"] = dead_pid()  # the writer died before dbt answered
    journal.path.write_text(json.dumps(entries))
    report = ChangeJournal(journal.path, root).recover()

    assert edited.read_text() == "select 1 as a\n" and removed.read_text() == "select 2 as g\n" and not created.exists()
    assert touched.read_text() == "select 31 as b -- a person's edit\n"
    assert len(report) == 1 and "dbt_model" in report[0] and "interrupted before dbt validated it" in report[0]
    assert "put back: models/a.sql, models/gone.sql, models/new/c.sql" in report[0]
    assert "changed since, left as they are: models/b.sql" in report[0]
    assert not journal.path.exists()


def test_an_answered_change_leaves_no_record(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    journal = ChangeJournal(tmp_path / "j.json", root)
    token = journal.begin("file_write", {root / "x.sql": b"select 1\n"})
    other = journal.begin("dbt_model", {root / "y.sql": b"select 2\n"})
    journal.end(token)
    assert list(json.loads(journal.path.read_text())) == [other]
    journal.end(other)
    assert not journal.path.exists()
