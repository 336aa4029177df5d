"""Prove that each page's browser test notices when the page's main action is broken.

For every page, a mutation names one statement inside the code that performs the page's
main action (the thing the user clicks for) and the e2e test that covers the page. The
script:

1. snapshots the repo's files once (``git ls-files``: tracked plus untracked, non-ignored
   files, with their working-tree content) into a temporary directory, so every run below
   tests the same code even while others keep editing the working tree;
2. runs the unmutated e2e tests in a fresh copy of the snapshot (by default each test
   alone, exactly like the mutated run; ``--baseline once`` runs them all in one pytest);
3. per mutation, copies the snapshot into a fresh temporary directory, inserts
   ``raise RuntimeError("broken on purpose by scripts/break_pages.py")`` right before the
   anchor statement (same indentation) and runs that one test there with
   ``CATALOG_REQUIRE_BROWSER=1`` (``CATALOG_TEST_CACHE`` is passed through if set);
4. records the outcome, the first line of the failure, the test line that failed, whether
   the server log shows the RuntimeError (the broken code really ran) and the artefacts
   the test saved (copied out of the temporary directory);
5. prints a markdown table.

The repository itself is never modified. An anchor that is not found exactly once, is
not the first line of a statement, or is not inside the named function stops the script
before any test runs.

    nice /work/venv/bin/python scripts/break_pages.py [--pages catalog,similarity]
        [--baseline each|once|skip] [--keep] [--artifacts DIR] [--timeout 1200]

Exit code: 0 every mutated test failed because of the mutation; 1 a mutated test passed
(a gap in the e2e test); 2 inconclusive (a baseline run did not pass, a run errored
before the test body, timed out, or failed without the RuntimeError in the server log).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_FILE = "tests/e2e/test_pages_browser.py"
MARKER = "broken on purpose by scripts/break_pages.py"
RAISE = f'raise RuntimeError("{MARKER}")'
DEFAULT_TIMEOUT_S = 1200.0
EXIT_GAP, EXIT_INCONCLUSIVE = 1, 2


@dataclass(frozen=True)
class Mutation:
    """Raise right before ``anchor`` (a whole source line, stripped) in ``path``:``function``."""

    page: str
    path: str  # relative to the repo
    function: str  # the function that contains the anchor (checked)
    anchor: str
    test: str  # the test function in TEST_FILE
    action: str  # what the user does that this breaks

    @property
    def nodeid(self) -> str:
        return f"{TEST_FILE}::{self.test}"


# In the order of the tests in TEST_FILE (the order a full run uses).
MUTATIONS = (
    Mutation("catalog", "ui/selection_bar.py", "_tag",
             "added = ws.store.tag_rows(dataset, ids, tag)",
             "test_catalog_filter_open_and_tag", "Tag selected"),
    Mutation("similarity", "ui/search_widgets.py", "similar",
             "return _similar(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),",
             "test_similarity_anchor_scores_threshold_and_slice", "similarity search of the anchors"),
    Mutation("text_search", "ui/search_widgets.py", "text_search",
             "return _text(str(ws.home), plan.dataset, plan.embedding, "
             "embedding_stamp(ws, plan.dataset, plan.embedding),",
             "test_text_search_finds_read_csv", "text search of the typed query"),
    Mutation("smart_select", "ui/smart_select.py", "run_selection",
             "return _select(str(ws.home), dataset, table_key, emb, _emb_key(ws, dataset, emb),",
             "test_smart_select_cluster_save_find_and_download", "Preview (run the selection)"),
    Mutation("slices", "ui/slice_widgets.py", "export_bytes",
             "chosen = rows_for_export(ws, dataset, slice_name=name)",
             "test_smart_select_cluster_save_find_and_download", "export the slice for download"),
    Mutation("clusters", "ui/cluster_picks.py", "apply_lasso",
             "state.replace_selection(dataset, after)",
             "test_cluster_map_box_selection_fills_the_grid",
             "box-select points → Replace selection → picked rows"),
    Mutation("quality", "ui/quality_widgets.py", "relabel",
             "done = review_label_issue(ws, dataset, rid, \"accept\", label=new_label)",
             "test_label_review_accept_changes_the_label_in_the_catalog", "Accept <suggested label>"),
    Mutation("embeddings", "ui/embedding_widgets.py", "run_import",
             "files = [(f.name, f.getvalue()) for f in uploads]",
             "test_embeddings_upload_and_make_active", "Import the uploaded vectors"),
)
PAGES = {m.page: m for m in MUTATIONS}


class AnchorError(RuntimeError):
    """A mutation's anchor is missing, repeated, not a statement or in another function."""


# ---- mutation ----------------------------------------------------------------------------
def _enclosing_function(tree: ast.AST, lineno: int) -> str | None:
    best: ast.AST | None = None
    for node in ast.walk(tree):
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.lineno <= lineno <= (node.end_lineno or node.lineno)
                and (best is None or node.lineno > best.lineno)):
            best = node
    return best.name if best is not None else None


def mutate_source(text: str, m: Mutation) -> tuple[str, int]:
    """``text`` with RAISE inserted before ``m.anchor`` (same indentation); (new text,
    1-based line of the anchor in the original). Raises AnchorError."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == m.anchor.strip()]
    if len(hits) != 1:
        raise AnchorError(f"{m.page}: anchor found {len(hits)} times in {m.path} (need exactly 1): "
                          f"{m.anchor!r}")
    i = hits[0]
    tree = ast.parse(text, filename=m.path)
    if not any(isinstance(n, ast.stmt) and n.lineno == i + 1 for n in ast.walk(tree)):
        raise AnchorError(f"{m.page}: {m.path}:{i + 1} is not the first line of a statement: {m.anchor!r}")
    inside = _enclosing_function(tree, i + 1)
    if inside != m.function:
        raise AnchorError(f"{m.page}: {m.path}:{i + 1} is in function {inside!r}, not {m.function!r}")
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    newline = "\r\n" if lines[i].endswith("\r\n") else "\n"
    mutated = "".join(lines[:i] + [f"{indent}{RAISE}{newline}"] + lines[i:])
    compile(mutated, m.path, "exec")  # a SyntaxError here is a bug of the anchor: fail loudly
    return mutated, i + 1


def check_test_exists(repo: Path, m: Mutation) -> None:
    source = (repo / TEST_FILE).read_text(encoding="utf-8")
    if not re.search(rf"^def {re.escape(m.test)}\(", source, flags=re.MULTILINE):
        raise AnchorError(f"{m.page}: no test function {m.test} in {TEST_FILE}")


def repo_files(repo: Path) -> list[str]:
    """Tracked files plus untracked, non-ignored ones (what a developer's run would see)."""
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], check=True, capture_output=True).stdout
    return sorted({p for p in out.decode().split("\0") if p})


def copy_repo(repo: Path, files: list[str], target: Path) -> None:
    """Copy ``files`` (working-tree content) from ``repo`` into ``target``; files deleted in
    the working tree are skipped."""
    for rel in files:
        src = repo / rel
        if not src.is_file() and not src.is_symlink():
            continue
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)


def fresh_copy(snapshot: Path, label: str) -> Path:
    """A new temporary directory holding a copy of ``snapshot``."""
    target = Path(tempfile.mkdtemp(prefix=f"break_pages-{label}-"))
    shutil.copytree(snapshot, target, symlinks=True, dirs_exist_ok=True)
    return target


# ---- running pytest -------------------------------------------------------------------------
@dataclass
class TestResult:
    """Outcome of one test in one pytest run."""

    outcome: str  # passed | failed | error | skipped | missing | timeout
    message: str = ""  # first line of the failure
    test_line: str = ""  # "L71: expect(...)" the statement of the test that failed
    hit: bool = False  # the server log shows MARKER (the broken code ran)
    artifacts: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "passed"


def _first_line(text: str) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _waiting_for(text: str) -> str:
    """The locator a Playwright ``expect`` was waiting for (from its call log)."""
    match = re.search(r"waiting for (.+)", text or "")
    return match.group(1).strip() if match else ""


def _test_line(detail: str, test_source: list[str]) -> str:
    nums = re.findall(rf"{re.escape(TEST_FILE)}:(\d+)", detail or "")
    if not nums:
        return ""
    n = int(nums[-1])
    code = test_source[n - 1].strip() if 0 < n <= len(test_source) else ""
    return f"L{n}: {code}"


def parse_junit(xml_path: Path, test_source: list[str]) -> dict[str, TestResult]:
    """{test function name: result} from a pytest ``--junitxml`` report."""
    results: dict[str, TestResult] = {}
    if not xml_path.exists():
        return results
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = case.get("name", "")
        res = results.setdefault(name, TestResult("passed", seconds=float(case.get("time") or 0)))
        for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is None:
                continue
            if res.outcome == "passed" or outcome == "failed":
                detail = node.text or ""
                message = _first_line(node.get("message", "")) or _first_line(detail)
                res.outcome = outcome
                res.test_line = _test_line(detail, test_source)
                waiting = "" if res.test_line else _waiting_for(node.get("message", "") + "\n" + detail)
                res.message = f"{message} (waiting for {waiting})" if waiting else message
    return results


def parse_artifacts(stdout: str) -> dict[str, list[str]]:
    """{test function name: [paths]} from the ``[e2e] artifacts of <nodeid>:`` blocks."""
    found: dict[str, list[str]] = {}
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"\[e2e\] artifacts of (\S+?):\s*$", line.strip())
        if not match:
            continue
        paths = found.setdefault(match.group(1).split("::")[-1], [])
        for follow in lines[i + 1:]:
            if not follow.strip().startswith("/"):
                break
            paths.append(follow.strip())
    return found


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the pytest we started and its children (streamlit servers): its own group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        proc.wait(timeout=30)


def run_tests(copy: Path, tests: list[str], timeout: float, log: Path) -> tuple[dict[str, TestResult], str]:
    """Run ``tests`` (function names in TEST_FILE) in ``copy``; (results, pytest output)."""
    xml = copy / ".break_pages-junit.xml"
    xml.unlink(missing_ok=True)
    env = {**os.environ, "CATALOG_REQUIRE_BROWSER": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           *[f"{TEST_FILE}::{t}" for t in tests]]
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            timed_out = True
    elapsed = time.monotonic() - started
    output = log.read_text(encoding="utf-8", errors="replace")
    source = (copy / TEST_FILE).read_text(encoding="utf-8").splitlines()
    results = parse_junit(xml, source)
    artifacts = parse_artifacts(output)
    for t in tests:
        res = results.get(t)
        if res is None:
            res = results[t] = TestResult("timeout" if timed_out else "missing",
                                          f"no result after {elapsed:.0f} s" if timed_out
                                          else _first_line(output[-2000:]))
        res.artifacts = list(dict.fromkeys(artifacts.get(t, [])))
        res.hit = any(MARKER in Path(p).read_text(errors="replace")
                      for p in res.artifacts if p.endswith(".log") and Path(p).exists())
        if len(tests) == 1:
            res.seconds = elapsed
    return results, output


def keep_artifacts(res: TestResult, copy: Path, target: Path) -> None:
    """Copy the artefacts out of the temporary repo copy; point ``res`` at the copies."""
    kept = []
    for p in res.artifacts:
        src = Path(p)
        if not src.exists():
            kept.append(p)
            continue
        try:
            rel = src.relative_to(copy / "test-artifacts")
        except ValueError:
            rel = Path(src.name)
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        kept.append(str(dst))
    res.artifacts = kept


# ---- report -------------------------------------------------------------------------------
def _cell(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def describe_baseline(res: TestResult | None) -> str:
    if res is None:
        return "not run"
    if res.ok:
        return f"passed ({res.seconds:.0f} s)" if res.seconds else "passed"
    return _cell(f"**{res.outcome.upper()}**: {res.test_line} {res.message}")


def describe_mutated(res: TestResult) -> str:
    if res.outcome == "passed":
        return "**PASSED (gap!)**"
    if res.outcome == "failed":
        return (f"failed ({res.seconds:.0f} s)" if res.hit
                else f"failed ({res.seconds:.0f} s), RuntimeError not in the server log")
    return f"**{res.outcome.upper()}** (inconclusive)"


def describe_seen(res: TestResult) -> str:
    if res.outcome == "passed":
        return "nothing: every assertion passed with the action broken"
    seen = f"{res.test_line} → {res.message}" if res.test_line else res.message
    return _cell(seen + ("; server log: RuntimeError raised" if res.hit else ""))


def table(mutations: list[Mutation], base: dict[str, TestResult],
          mutated: dict[str, TestResult]) -> str:
    out = ["| page | mutated file:function | unmutated result | mutated result | what the test saw |",
           "|---|---|---|---|---|"]
    for m in mutations:
        res = mutated[m.page]
        out.append(f"| {m.page} | `{m.path}:{m.function}` ({_cell(m.action)}) | "
                   f"{describe_baseline(base.get(m.page))} | {describe_mutated(res)} | "
                   f"{describe_seen(res)} |")
    return "\n".join(out)


def verdict(m: Mutation, base: TestResult | None, res: TestResult) -> int:
    if res.outcome == "passed":
        return EXIT_GAP
    if res.outcome != "failed" or not res.hit or (base is not None and not base.ok):
        return EXIT_INCONCLUSIVE
    return 0


# ---- main ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=",".join(PAGES),
                        help=f"comma-separated subset of: {', '.join(PAGES)}")
    parser.add_argument("--baseline", choices=("each", "once", "skip"), default="each",
                        help="unmutated runs: each test alone (default), all in one pytest, or none")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repo copies")
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="where to keep the artefacts and pytest logs "
                             "(default: a new break_pages-* directory in the temp dir)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds per pytest run of one test (default %(default)s)")
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = [p for p in names if p not in PAGES]
    if unknown or not names:
        parser.error(f"unknown page(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(PAGES)}")
    args.mutations = [m for m in MUTATIONS if m.page in names]
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mutations: list[Mutation] = args.mutations
    snapshot = Path(tempfile.mkdtemp(prefix="break_pages-snapshot-"))
    temp_dirs: list[Path] = [snapshot]
    try:
        copy_repo(REPO, repo_files(REPO), snapshot)
        prepared = {}
        for m in mutations:  # every anchor is checked before anything runs
            check_test_exists(snapshot, m)
            prepared[m.page] = mutate_source((snapshot / m.path).read_text(encoding="utf-8"), m)
            say(f"[break_pages] {m.page}: raise before {m.path}:{prepared[m.page][1]} in {m.function}()")
        out_dir = args.artifacts or Path(tempfile.mkdtemp(prefix="break_pages-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        say(f"[break_pages] snapshot of the working tree: {snapshot}")
        say(f"[break_pages] artefacts and pytest logs: {out_dir}")
        started = time.monotonic()
        base = run_baseline(args, mutations, snapshot, out_dir, temp_dirs)
        mutated: dict[str, TestResult] = {}
        for m in mutations:
            copy = fresh_copy(snapshot, m.page)
            temp_dirs.append(copy)
            (copy / m.path).write_text(prepared[m.page][0], encoding="utf-8")
            say(f"[break_pages] mutated {m.page} ({m.path}:{m.function}) → {m.test} …")
            results, _ = run_tests(copy, [m.test], args.timeout, out_dir / f"pytest-mutated-{m.page}.log")
            res = mutated[m.page] = results[m.test]
            keep_artifacts(res, copy, out_dir / m.page)
            say(f"[break_pages]   {res.outcome} in {res.seconds:.0f} s: {res.test_line} {res.message}")
        total = time.monotonic() - started
    finally:
        for d in temp_dirs:
            if args.keep:
                say(f"[break_pages] kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)

    print(table(mutations, base, mutated))
    print()
    print(f"Total run time: {total / 60:.1f} min. Artefacts and pytest logs: {out_dir}")
    for m in mutations:
        for p in mutated[m.page].artifacts:
            print(f"- {m.page}: {p}")
    codes = [verdict(m, base.get(m.page), mutated[m.page]) for m in mutations]
    if EXIT_GAP in codes:
        return EXIT_GAP
    return max(codes, default=0)


def run_baseline(args: argparse.Namespace, mutations: list[Mutation], snapshot: Path, out_dir: Path,
                 temp_dirs: list[Path]) -> dict[str, TestResult]:
    """{page: result of its unmutated test} (empty with ``--baseline skip``)."""
    if args.baseline == "skip":
        return {}
    tests = list(dict.fromkeys(m.test for m in mutations))
    clean = fresh_copy(snapshot, "unmutated")
    temp_dirs.append(clean)
    groups = [[t] for t in tests] if args.baseline == "each" else [tests]
    by_test: dict[str, TestResult] = {}
    for group in groups:
        say(f"[break_pages] unmutated: {', '.join(group)} …")
        log = out_dir / f"pytest-unmutated-{group[0] if len(group) == 1 else 'all'}.log"
        results, _ = run_tests(clean, group, args.timeout * len(group), log)
        for t in group:
            keep_artifacts(results[t], clean, out_dir / "unmutated")
            by_test[t] = results[t]
            say(f"[break_pages]   {t}: {results[t].outcome} {results[t].message}")
    return {m.page: by_test[m.test] for m in mutations}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AnchorError as err:
        print(f"break_pages: {err}", file=sys.stderr)
        sys.exit(EXIT_INCONCLUSIVE)
