"""The documentation the code points at exists: docs/protocol.md sections, the examples index,
and the README's Debugging snippet runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepgram_agent.testing import AgentEmulator

from .conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"

#: One reference: a section number, optionally a numbered rule of it or a row of its table.
REF = r"(\d+(?:\.\d+)*)(?: rule (\d+)| #(\d+))?"
#: A citation: "docs/protocol.md 9.4", "docs/protocol.md 3 rule 4", "docs/protocol.md 2 and 9.4",
#: "docs/protocol.md 5.8/5.9", "docs/protocol.md 12 #2", "docs/protocol.md section 6 and the 9.5 transcript".
CITATION = re.compile(
    rf"(?:docs/)?protocol\.md,? (?:section |§)?{REF}((?:\s*(?:,|and|/)\s*(?:the )?{REF})*)"
)
#: Cross-references inside docs/protocol.md itself: "§9.4", "§3 rule 4", "§12 #22".
SECTION_SIGN = re.compile(rf"§{REF}")


def sections(text: str) -> dict[str, str]:
    """Section number -> its text (up to the next heading of any level)."""
    found: dict[str, str] = {}
    heads = list(re.finditer(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", text, re.MULTILINE))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        found[head.group(1)] = text[head.end() : end]
    return found


def resolve(number: str, rule: str | None, row: str | None, book: dict[str, str]) -> str | None:
    """Why the reference does not resolve, or ``None`` when it does."""
    if number not in book:
        return f"no section {number}"
    body = book[number]
    if rule is not None and not re.search(rf"^{rule}\. ", body, re.MULTILINE):
        return f"section {number} has no rule {rule}"
    if row is not None and not re.search(rf"^\| {row} \|", body, re.MULTILINE):
        return f"section {number} has no row #{row}"
    return None


def citations(text: str) -> list[tuple[str, str | None, str | None]]:
    refs: list[tuple[str, str | None, str | None]] = []
    for match in CITATION.finditer(text):
        refs.append((match.group(1), match.group(2), match.group(3)))
        for more in re.finditer(REF, match.group(4)):
            refs.append((more.group(1), more.group(2), more.group(3)))
    return refs


def cited_files() -> list[Path]:
    files = [*ROOT.glob("deepgram_agent/**/*.py"), *ROOT.glob("tests/*.py")]
    files += [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/**/*.py")]
    files += [ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/*.md")]
    return [f for f in files if f.name != "test_docs.py"]


def test_every_cited_section_of_the_wire_reference_exists() -> None:
    book = sections(PROTOCOL.read_text(encoding="utf-8"))
    problems: list[str] = []
    seen = 0
    for path in cited_files():
        text = path.read_text(encoding="utf-8")
        for number, rule, row in citations(text):
            seen += 1
            why = resolve(number, rule, row, book)
            if why:
                problems.append(f"{path.relative_to(ROOT)}: docs/protocol.md {number}: {why}")
    assert problems == []
    assert seen >= 40  # the package cites it throughout: the pattern did find them


def test_the_wire_reference_cross_references_resolve() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    book = sections(text)
    refs = [m.groups() for m in SECTION_SIGN.finditer(text)]
    assert len(refs) > 30
    problems = [why for ref in refs if (why := resolve(*ref, book))]
    assert problems == []


def test_the_wire_reference_keeps_the_section_numbers() -> None:
    book = sections(PROTOCOL.read_text(encoding="utf-8"))
    expected = {str(n) for n in range(14)}
    expected |= {"1.1", "1.2", "1.3", "4.1", "4.2"}
    expected |= {f"5.{n}" for n in range(1, 16)} | {f"5.1.{n}" for n in range(1, 8)}
    expected |= {f"6.{n}" for n in range(1, 25)} | {f"9.{n}" for n in range(1, 7)}
    assert expected <= set(book), sorted(expected - set(book))
    # The rules and rows other documents point at by number.
    assert all(re.search(rf"^{n}\. ", book["3"], re.MULTILINE) for n in range(1, 8))
    assert all(re.search(rf"^\| {n} \|", book["12"], re.MULTILINE) for n in range(1, 26))


def test_the_citation_pattern() -> None:
    text = (
        "(docs/protocol.md 2 and 9.4) (docs/protocol.md 3 rule 4) (docs/protocol.md 5.8/5.9) "
        "(docs/protocol.md 12 #2) (docs/protocol.md section 6 and the 9.5 transcript) docs/protocol.md 4.1)"
    )
    assert citations(text) == [
        ("2", None, None),
        ("9.4", None, None),
        ("3", "4", None),
        ("5.8", None, None),
        ("5.9", None, None),
        ("12", None, "2"),
        ("6", None, None),
        ("9.5", None, None),
        ("4.1", None, None),
    ]
    book = {"3": "\n1. one\n2. two\n", "12": "\n| 1 | x |\n"}
    assert resolve("3", "2", None, book) is None
    assert resolve("3", "4", None, book) == "section 3 has no rule 4"
    assert resolve("12", None, "2", book) == "section 12 has no row #2"
    assert resolve("7", None, None, book) == "no section 7"


# ---------------------------------------------------------------------------------- examples


INDEX = ROOT / "examples" / "README.md"
#: A row of the index: | [`name`](link) | what it shows | `emulator options` or (none) |
ROW = re.compile(r"^\| \[`([^`]+)`\]\(([^)]+)\) \| [^|]+ \| (?:`([^`]*)`|\(none\)) \|$", re.M)


def index_rows() -> list[tuple[str, str, str]]:
    return [(m[1], m[2], m[3] or "") for m in ROW.finditer(INDEX.read_text(encoding="utf-8"))]


def test_the_examples_index_lists_every_example() -> None:
    examples = sorted(
        str(p.relative_to(ROOT / "examples")) for p in (ROOT / "examples").rglob("*.py")
    )
    rows = index_rows()
    assert sorted(name for name, _, _ in rows) == examples
    assert all(name == link for name, link, _ in rows)


def serve_emulator(options: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepgram_agent.testing", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()  # the first line; ends at once if the process died
    assert url.startswith("ws://127.0.0.1:"), f"emulator did not start: {url!r}"
    return proc, url


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.communicate(timeout=scaled(10))


@pytest.mark.parametrize("row", index_rows(), ids=lambda row: row[0])
def test_each_example_runs_as_the_index_says(row: tuple[str, str, str]) -> None:
    name, _, options = row
    index = INDEX.read_text(encoding="utf-8")
    # The index's two commands, with the options of this example's row.
    assert "python -m deepgram_agent.testing --port 8765\n" in index
    run = "DEEPGRAM_AGENT_URL=ws://127.0.0.1:8765 DEEPGRAM_API_KEY=any-key python examples/"
    assert run in index
    proc, url = serve_emulator(options.split())
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPGRAM_")}
        env.update(DEEPGRAM_AGENT_URL=url, DEEPGRAM_API_KEY="any-key", PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, f"examples/{name}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            cwd=ROOT,
            check=False,
        )
    finally:
        stop(proc)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "Agent error" not in out.stdout
    if "--script" in options:  # the script's functions were called and answered
        assert "get_weather" in out.stdout and "{result" not in out.stdout, out.stdout


def test_readme_emulator_api_key_commands(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "--api-key" in b)
    serve, connect = block.strip().splitlines()
    assert serve == "deepgram-agent emulate --port 8765 --api-key test-key"
    assert connect.startswith(
        "DEEPGRAM_AGENT_URL=ws://127.0.0.1:8765 DEEPGRAM_API_KEY=wrong deepgram-agent demo"
    )
    assert connect.endswith("# exit 3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepgram_agent", "emulate", "--port", "0", "--api-key", "test-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPGRAM_")}
        base = {**env, "PYTHONPATH": str(ROOT), "DEEPGRAM_AGENT_URL": url}
        demo = [sys.executable, "-m", "deepgram_agent", "demo"]
        wrong = subprocess.run(
            demo, env={**base, "DEEPGRAM_API_KEY": "wrong"}, capture_output=True, text=True,
            timeout=scaled(60), cwd=tmp_path, check=False,
        )  # fmt: skip
        right = subprocess.run(
            demo, env={**base, "DEEPGRAM_API_KEY": "test-key"}, capture_output=True, text=True,
            timeout=scaled(60), cwd=tmp_path, check=False,
        )  # fmt: skip
    finally:
        stop(proc)
    assert wrong.returncode == 3, wrong.stderr
    assert right.returncode == 0, right.stderr


def test_example_docstrings_name_their_own_path() -> None:
    for path in (ROOT / "examples").rglob("*.py"):
        relative = str(path.relative_to(ROOT))
        for named in re.findall(r"python (examples/\S+\.py)", path.read_text(encoding="utf-8")):
            assert named == relative, f"{relative} tells users to run {named}"


# ---------------------------------------------------------------------------------- README


def debugging_snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Debugging\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "one library-side logging snippet in the Debugging section"
    return str(blocks[0])


def test_readme_debugging_snippet_runs_and_logs(tmp_path: Path) -> None:
    snippet = tmp_path / "debugging.py"
    snippet.write_text(debugging_snippet())
    with AgentEmulator.run_in_thread(realtime_audio=False) as emu:
        env = dict(os.environ, DEEPGRAM_AGENT_URL=emu.url, DEEPGRAM_API_KEY="readme-debug-key")
        out = subprocess.run(
            [sys.executable, str(snippet)],
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            cwd=str(tmp_path),
            check=False,
        )
    assert out.returncode == 0, out.stderr
    assert re.search(r"DEBUG deepgram_agent[.\w]*: ", out.stderr), out.stderr
    assert "readme-debug-key" not in out.stdout + out.stderr


def test_readme_debugging_cli_command_runs_and_logs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Debugging\n", 1)[1].split("\n## ", 1)[0]
    bash = "\n".join(re.findall(r"```bash\n(.*?)```", section, flags=re.S))
    assert "deepgram-agent demo -v" in bash
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPGRAM_")}
    out = subprocess.run(
        [sys.executable, "-m", "deepgram_agent", "demo", "-v"],
        env={**env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=str(tmp_path),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert re.search(r"DEBUG deepgram_agent[.\w]*: ", out.stderr), out.stderr
    assert "agent: Hello!" in out.stdout  # logs go to stderr; the transcript stays on stdout


def test_the_function_tools_script_file_is_the_one_its_docstring_shows() -> None:
    import ast
    import json

    doc = ast.get_docstring(ast.parse((ROOT / "examples" / "function_tools.py").read_text()))
    assert doc is not None
    shown = re.search(r"\n(    \{\n.*?\n    \})\n", doc, flags=re.S)
    assert shown
    saved = (ROOT / "examples" / "scripts" / "weather_and_time.json").read_text()
    assert json.loads(shown.group(1)) == json.loads(saved)
