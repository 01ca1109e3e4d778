"""The flow diagrams in docs/flows/ are drawn from the code, and `kiosk flows diagrams --check` catches stale ones."""

from conftest import ROOT

from kiosk import cli
from kiosk.flows import diagrams
from kiosk.flows.base import declared_transitions


def test_docs_flows_are_up_to_date():
    stale = diagrams.stale(ROOT / "docs" / "flows")
    assert not stale, f"stale flow diagrams {stale}: run `kiosk flows diagrams` and commit docs/flows/"


def test_each_diagram_draws_every_state_and_transition_of_its_flow():
    for name in diagrams.FLOWS:
        cls = diagrams.flow_class(name)
        text = diagrams.flow_page(name)
        assert "```mermaid\nstateDiagram-v2" in text
        for state in cls.states:
            assert f'as {state.id}\n' in text, (name, state.id)
        for source, _, target in declared_transitions(cls):
            if source != target:
                assert f"{source} --> {target} :" in text, (name, source, target)
        index = diagrams.index_page()
        assert f"({name}.md)" in index and all(f"`{e}`" in index for e in diagrams.events_of(cls))


def test_check_names_missing_and_edited_files_and_write_fixes_them(tmp_path, capsys):
    out = tmp_path / "flows"
    assert cli.main(["flows", "diagrams", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert all(f"{out}/{name}" in err for name in ("attendance.md", "enrolment.md", "admin.md", "README.md"))
    assert cli.main(["flows", "diagrams", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", *(f"{name}.md" for name in diagrams.FLOWS)])
    assert cli.main(["flows", "diagrams", "--check", "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "admin.md").write_text((out / "admin.md").read_text().replace("locked --> menu", "locked --> shell"))
    assert cli.main(["flows", "diagrams", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "admin.md" in err and "enrolment.md" not in err
    assert cli.main(["flows", "diagrams", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}/admin.md"
    assert cli.main(["flows", "diagrams", "--out", str(out)]) == 0
    assert "already up to date" in capsys.readouterr().out
