"""Mutation testing of the pure core (issue 15): `make mutate` / `make mutate MODULE=lifecycle/machine.py`.

Python operators are mutated by cosmic-ray (docs/testing.md says why cosmic-ray and which operators); the spec's
guards (condition strings of `specs.lifecycle.TRANSITIONS`) and the audit's SQL text are mutated by two small
passes here, because no Python mutation tool changes string contents. Every pass works on a COPY of the work
tree in a temporary directory (the tree in place is never touched: other people run tests from it) and runs,
for each mutant, only the tests that exercise the module (`MODULES` below), with `-x` and the deterministic
`ci` Hypothesis profile. A mutant is killed when that test command fails or times out.

Survivors listed in docs/testing.md as equivalent (the "Equivalent mutants" list) are not counted; every other
survivor is printed with its line and counts against the score. Exit status 1 when any module is below 95 %.
Results of the last run of each module are kept in `.mutation/` (gitignored).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db  # type: ignore[import-untyped]
from cosmic_ray.work_item import WorkerOutcome, WorkResult  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".mutation"
DOC = ROOT / "docs" / "testing.md"
THRESHOLD = 95.0
TIMEOUT_S = 120.0  # per mutant, at least; four times the unmutated run when that is longer (a loaded machine)
BASELINE_TIMEOUT_S = 1800.0

# module -> the tests that exercise it (plus tests/mutation_kills/test_<stem>*.py, added automatically).
MODULES: dict[str, list[str]] = {
    "specs/lifecycle.py#guards": [
        "tests/lifecycle/test_machine_spec.py",
        "tests/safety/test_safety_properties.py",
        "tests/safety/test_spec_edits.py",
        "tests/safety/test_expected_guards.py",
        "tests/lifecycle/test_registry_transitions.py",
    ],
    # The spec's Python (terminal flags, state sets, fill_side, the vocabulary checks), by cosmic-ray.
    "specs/lifecycle.py": [
        "tests/lifecycle/test_machine_spec.py",
        "tests/safety/test_safety_properties.py",
        "tests/safety/test_expected_guards.py",
        "tests/lifecycle/test_registry_transitions.py",
    ],
    "lifecycle/machine.py": [
        "tests/lifecycle/test_machine_spec.py",
        "tests/safety/test_safety_properties.py",
        "tests/safety/test_spec_edits.py",
        "tests/lifecycle/test_registry_transitions.py",
    ],
    "lifecycle/reconcile.py": ["tests/reconcile", "tests/lifecycle/test_pending_exposure.py"],
    "lifecycle/clock.py": ["tests/lifecycle/test_venue_clock.py", "tests/dst/test_churn_clock.py"],
    "lifecycle/symbols.py": ["tests/lifecycle/test_symbols.py", "tests/lifecycle/test_symbol_padding.py"],
    "lifecycle/escalation.py": ["tests/safety/test_escalation.py"],
    "lifecycle/killswitch.py": ["tests/safety/test_killswitch.py"],
    "dst/shrink.py": ["tests/dst/test_shrink.py"],
    "strategy/sizing.py": ["tests/strategy"],
    "lifecycle/fills.py": [
        "tests/reconcile",
        "tests/joint",
        "tests/lifecycle/test_hand_flip_attribution.py",
        "tests/lifecycle/test_pending_exposure.py",
    ],
    "lifecycle/protection.py": [
        "tests/lifecycle/test_protection_planner.py",
        "tests/lifecycle/test_protection_far_add.py",
        "tests/reconcile",
    ],
    # The one stop rule: the planner's tests (stop_level), the audit's INV-13 tests, and its own.
    "lifecycle/stops.py": [
        "tests/lifecycle/test_protection_planner.py",
        "tests/lifecycle/test_protection_far_add.py",
        "tests/mutation_kills/test_protection.py",
        "tests/audit/test_stop_prices.py",
    ],
    # Fees and funding in the registry: the ingest and attribution tests over the simulator's own account log, and the
    # DST money-view check's damage tests (added on 2026-12-05 with the funding rule by ledger facts).
    "store/charges.py": ["tests/accounting/test_account_log_ingest.py", "tests/dst/test_money.py"],
    # Joint invariants: the daemon-harness tests of tests/joint, and its own pure ones.
    "lifecycle/joint.py": ["tests/mutation_kills/test_joint.py", "tests/joint"],
    # The audit's SQL runs against the field, kill, value, anchor and chain tests; the corruption corpus (about a
    # minute a run) is left out to keep one pass near 20 minutes.
    "store/audit.py#sql": [
        "tests/audit/test_mutation_kills.py",
        "tests/audit/test_audit_fields.py",
        "tests/audit/test_position_values.py",
        "tests/audit/test_anchors.py",
        "tests/audit/test_chain_sql.py",
        "tests/audit/test_stop_prices.py",
        "tests/audit/test_keyed_chains.py",
    ],
    # The audit's Python (report, chain ranges, anchors, the parallel runner), by cosmic-ray. Its SQL pass's tests
    # but test_audit_fields.py (its corruptions still run, through run_audit on one connection and on workers, in
    # test_chain_sql.py; its own runs add the health tool in a subprocess per case): with all of them a partial run
    # went at about 7 of the module's ~450 mutants a minute on 2 shared cores, over an hour for the module. Fast
    # files first (-x stops at the first failure).
    "store/audit.py": [
        "tests/audit/test_mutation_kills.py",
        "tests/audit/test_position_values.py",
        "tests/audit/test_stop_prices.py",
        "tests/audit/test_keyed_chains.py",
        "tests/audit/test_anchors.py",
        "tests/audit/test_chain_sql.py",
    ],
}

# The operator set: the "one operator changed at a time" (comparison boundary and negation, and/or,
# a removed or added `not`, True/False, numbers +-1, + - * / swapped, a loop made empty, break/continue, an
# except clause that no longer matches). Everything else cosmic-ray offers is excluded (regexes, matched at the
# start of the operator name): binary operators other than the arithmetic inverses, comparison replacements other
# than boundary and negation, unary operators other than removing `not`/`-`, decorators and variable shuffling.
KEEP_BINARY = "Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Mul|BitOr_BitAnd|BitAnd_BitOr"
KEEP_COMPARE = (
    "Eq_NotEq|NotEq_Eq|Lt_LtE|Lt_GtE|LtE_Lt|LtE_Gt|Gt_GtE|Gt_LtE|GtE_Gt|GtE_Lt|Is_IsNot|IsNot_Is|In_NotIn|NotIn_In"
)
EXCLUDE_OPERATORS = [
    rf"core/ReplaceBinaryOperator_(?!(?:{KEEP_BINARY})$)",
    rf"core/ReplaceComparisonOperator_(?!(?:{KEEP_COMPARE})$)",
    r"core/ReplaceUnaryOperator_(?!(?:Delete_Not|Delete_USub)$)",
    r"core/RemoveDecorator",
    r"core/VariableReplacer",
    r"core/VariableInserter",
]


@dataclass
class Mutant:
    module: str
    operator: str
    line: int
    code: str  # the original source line, stripped
    outcome: str  # killed | survived | equivalent | incompetent
    diff: str = ""
    nth: int = 1  # which of the module's lines with this same text (1 = the first)


@dataclass
class ModuleResult:
    module: str
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for m in self.mutants if m.outcome == outcome)

    @property
    def score(self) -> float:
        killed, survived = self.count("killed") + self.count("incompetent"), self.count("survived")
        return 100.0 * killed / (killed + survived) if killed + survived else 100.0


# --- equivalents, read from docs/testing.md --------------------------------------------------------------------

EQUIV_LINE = re.compile(
    r"^- `(?P<module>[^`#]+(?:#\w+)?):(?P<op>[^`]+)` `(?P<code>.+?)`(?: \(#(?P<nth>\d+)\))? — (?P<why>.+)$"
)
Equivalent = tuple[str, str, str, int]  # module, operator, stripped source line, nth such line (0: any)


def equivalents() -> set[Equivalent]:
    """Every mutant docs/testing.md lists as equivalent: `- `module:Operator` `source line` (#n) — why`."""
    if not DOC.exists():
        return set()
    out: set[Equivalent] = set()
    for line in DOC.read_text().splitlines():
        m = EQUIV_LINE.match(line.strip())
        if m:
            out.add((m["module"], m["op"], m["code"].strip(), int(m["nth"] or 0)))
    return out


def is_equivalent(m: Mutant, equiv: set[Equivalent]) -> bool:
    op = m.operator.removeprefix("core/")
    return (m.module, op, m.code, 0) in equiv or (m.module, op, m.code, m.nth) in equiv


# --- the work copy ----------------------------------------------------------------------------------------------

IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".mutation", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    "mutants", "var", "run", "build", "*.egg-info", "*.db", "*.db-wal", "*.db-shm", "*.lock",
)  # fmt: skip


def make_copy(parent: Path, head: bool) -> Path:
    """The work tree as it is on disk, or (`head`) the last commit: other people's uncommitted work in progress
    can break a module's tests, and a red baseline measures nothing."""
    tree = parent / "tree"
    if head:
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    else:
        shutil.copytree(ROOT, tree, ignore=IGNORE, symlinks=True)
    probe = subprocess.run(
        [sys.executable, "-c", "import lifecycle, specs, store; print(lifecycle.__file__, specs.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    if not all(p.startswith(str(tree)) for p in probe.stdout.split()):
        raise RuntimeError(f"the copy does not import its own modules: {probe.stdout.strip()}")
    return tree


def test_files(module: str, tree: Path) -> list[str]:
    paths = [p for p in MODULES[module] if (tree / p).exists()]
    stem = Path(module.split("#")[0]).stem
    kills = tree / "tests" / "mutation_kills"
    if kills.is_dir():
        paths += sorted(str(p.relative_to(tree)) for p in kills.glob(f"test_{stem}*.py"))
    return paths


# Plugins are not auto-loaded (scanning and importing every installed pytest plugin, anyio's especially, cost
# about two thirds of each run); the pure core's tests need only Hypothesis' plugin, named explicitly.
TEST_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def test_command(paths: list[str], extra: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "_hypothesis_pytestplugin",
        "--hypothesis-profile=ci", *extra, *paths,
    ]  # fmt: skip


def run_tests(cmd: list[str], tree: Path, timeout: float) -> tuple[bool, str]:
    """(whether the tests pass, i.e. the mutant survives; the last line of pytest's output or "timeout")."""
    env = {**os.environ, **TEST_ENV}
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"timeout after {timeout:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode == 0, lines[-1] if lines else f"exit {proc.returncode}"


# --- pass 1: Python operators, by cosmic-ray --------------------------------------------------------------------


def cosmic_ray_pass(
    module: str, trees: Sequence[Path], cmd: list[str], timeout: float, equiv: set[Equivalent]
) -> list[Mutant]:
    """cosmic-ray's mutants of `module`, shared over `trees` (copies of one tree, one `cosmic-ray exec` each, side by
    side): the session is made once in the first, copied to the others, and each copy's session has every mutant
    but its share marked done (skipped) before it runs. Mutants whose outcome cannot count are not run at all
    (`settle_known`)."""
    tree = trees[0]
    cfg = tree / "cosmic-ray.toml"
    db = tree / "session.sqlite"
    excl = ", ".join(json.dumps(e) for e in EXCLUDE_OPERATORS)
    cfg.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(' '.join(cmd))}\n"
        "[cosmic-ray.distributor]\nname = 'local'\n"
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excl}]\n"
    )
    bindir = Path(sys.executable).parent
    for step in (["cosmic-ray", "init", cfg.name, db.name], ["cr-filter-operators", db.name, cfg.name]):
        subprocess.run([str(bindir / step[0]), *step[1:]], cwd=tree, check=True, capture_output=True)
    known = settle_known(module, tree, db, equiv)
    for other in trees[1:]:
        shutil.copy2(cfg, other / cfg.name)
        shutil.copy2(db, other / db.name)
    share_work([t / db.name for t in trees])
    runs = [
        subprocess.Popen(
            [str(bindir / "cosmic-ray"), "exec", cfg.name, db.name],
            cwd=t,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **TEST_ENV},
        )
        for t in trees
    ]
    for run in runs:
        _, err = run.communicate()
        if run.returncode != 0:
            raise RuntimeError(f"cosmic-ray exec failed ({run.returncode}): {err.decode()[-500:]}")
    out = known
    for t in trees:
        out += _dumped(module, t, db.name)
    return out


def settle_known(module: str, tree: Path, db: Path, equiv: set[Equivalent]) -> list[Mutant]:
    """Mutants whose outcome cannot change the score, marked done (skipped) in the session and returned with that
    outcome: those inside annotations and parameter lists (never evaluated) and those docs/testing.md lists as
    equivalent (not counted, killed or not). Run, each took the module's whole test list (a mutant that survives
    runs every test): in `store/audit.py` about half the module's time went to them."""
    source = (tree / module).read_text()
    lines = [text.strip() for text in source.splitlines()]
    unevaluated = signature_spans(source)
    out: list[Mutant] = []
    settled: list[str] = []
    with use_db(str(db), WorkDB.Mode.open) as work:
        for item in work.pending_work_items:
            [mutation] = item.mutations
            line, col = mutation.start_pos
            mutant = _mutant(module, lines, mutation.operator_name, line, "")
            if any(span_contains(span, (line, col)) for span in unevaluated):
                mutant.outcome = "annotation"
            elif is_equivalent(mutant, equiv):
                mutant.outcome = "equivalent"
            else:
                continue
            out.append(mutant)
            settled.append(item.job_id)
        work.set_multiple_results(settled, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    return out


def _mutant(module: str, lines: Sequence[str], operator: str, line: int, outcome: str, diff: str = "") -> Mutant:
    """A cosmic-ray mutation as this script names it: its source line (stripped) and which of the module's lines
    with that text it is, the key of the equivalents list."""
    code = lines[line - 1]
    return Mutant(module, operator, line, code, outcome, diff, lines[:line].count(code))


def share_work(sessions: Sequence[Path]) -> None:
    """Give each session one share of the pending mutants (every n-th, by job id) by marking the rest skipped, as
    cosmic-ray's own operator filter marks the mutants it drops."""
    if len(sessions) < 2:
        return

    with use_db(str(sessions[0]), WorkDB.Mode.open) as work:
        pending = sorted(item.job_id for item in work.pending_work_items)
    for k, session in enumerate(sessions):
        others = [job for i, job in enumerate(pending) if i % len(sessions) != k]
        with use_db(str(session), WorkDB.Mode.open) as work:
            work.set_multiple_results(others, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def _dumped(module: str, tree: Path, db_name: str) -> list[Mutant]:
    """The mutants this copy's session ran (those marked skipped were another copy's share, or `settle_known`'s)."""
    bindir = Path(sys.executable).parent
    dump = subprocess.run(
        [str(bindir / "cosmic-ray"), "dump", db_name], cwd=tree, check=True, capture_output=True, text=True
    )
    lines = [text.strip() for text in (tree / module).read_text().splitlines()]
    out: list[Mutant] = []
    for row in dump.stdout.splitlines():
        item, result = json.loads(row)
        if result is None or result["worker_outcome"] == "skipped":
            continue
        [mutation] = item["mutations"]
        outcome = result["test_outcome"] or "incompetent"
        line = mutation["start_pos"][0]
        out.append(_mutant(module, lines, mutation["operator_name"], line, outcome, result.get("diff") or ""))
    return out


Span = tuple[tuple[int, int], tuple[int, int]]


def span_contains(span: Span, pos: tuple[int, int]) -> bool:
    return span[0] <= pos < span[1]


def _span(node: ast.expr | ast.stmt) -> Span:
    return (node.lineno, node.col_offset), (node.end_lineno or node.lineno, node.end_col_offset or 0)


def signature_spans(source: str) -> list[Span]:
    """Where a mutation cannot change behaviour because the code is never evaluated: annotations (every module of
    the core has `from __future__ import annotations`) and a `def`'s parameter list outside its default values
    (cosmic-ray reads the bare `*` of keyword-only parameters as a multiplication). Mutants there are reported as
    `annotation` and not counted."""
    out: list[Span] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign):
            out.append(_span(node.annotation))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            header = ((node.lineno, node.col_offset), _span(node.body[0])[0])
            defaults = [_span(d) for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None]
            cuts = sorted([header[0], *(p for d in defaults for p in d), header[1]])
            out.extend((cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2))
    return out


# --- pass 2: the spec's guards ----------------------------------------------------------------------------------

GUARD_NAMES = ("has_fills", "has_no_fills", "has_stop_order", "has_open_qty", "is_flat")


def guard_mutants(source: str) -> Iterator[tuple[str, int, str, str]]:
    """(operator, line, original line, mutated source) for every transition's guard dropped, swapped or added."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "TransitionSpec"):
            continue
        arg = node.args[3]
        assert isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.end_col_offset is not None
        row = arg.lineno - 1
        for new in ("", *GUARD_NAMES):
            if new == arg.value:
                continue
            op = "guard/drop" if not new else ("guard/add" if not arg.value else "guard/swap")
            text = lines[row]
            mutated = [*lines]
            mutated[row] = text[: arg.col_offset] + json.dumps(new) + text[arg.end_col_offset :]
            label = f"{lines[node.lineno - 1].strip()} … {text.strip()} -> {new!r}"
            yield f"{op}:{new or 'none'}", arg.lineno, label, "".join(mutated)


# --- pass 3: the audit's SQL text -------------------------------------------------------------------------------

SQL_SWAPS = [
    (r"(?<![<>!=])=(?!=)", "!="),
    (r"!=|<>", "="),
    (r"<=", "<"),
    (r">=", ">"),
    (r"(?<![<-])<(?![=>])", "<="),
    (r"(?<![->])>(?!=)", ">="),
    (r"\bAND\b", "OR"),
    (r"\bOR\b", "AND"),
    (r"\bIS NOT NULL\b", "IS NULL"),
    (r"\bIS NULL\b", "IS NOT NULL"),
    (r"\bNOT IN\b", "IN"),
    (r"(?<!NOT )\bIN\b(?= \()", "NOT IN"),
]
SQL_HINT = re.compile(r"\b(SELECT|WHERE|JOIN|CASE|HAVING)\b")


def sql_mutants(source: str) -> Iterator[tuple[str, int, str, str]]:
    """(operator, line, original line, mutated source): one SQL operator changed inside one string constant."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for text in lines:
        offsets.append(offsets[-1] + len(text))
    tree = ast.parse(source)
    docstrings = {
        id(body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        for body in [node.body]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    }
    # An f-string is one literal (its constant parts carry the whole f-string's position before Python 3.12).
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            text = node.value
        else:
            continue
        if id(node) in docstrings or node.end_lineno is None or node.end_col_offset is None:
            continue
        start = offsets[node.lineno - 1] + len(lines[node.lineno - 1].encode()[: node.col_offset].decode())
        end = offsets[node.end_lineno - 1] + len(lines[node.end_lineno - 1].encode()[: node.end_col_offset].decode())
        literal = source[start:end]
        if not SQL_HINT.search(text):
            continue
        for pattern, repl in SQL_SWAPS:
            for m in re.finditer(pattern, literal):
                mutated_literal = literal[: m.start()] + repl + literal[m.end() :]
                line = node.lineno + literal[: m.start()].count("\n")
                yield (
                    f"sql/{m.group(0)}->{repl}",
                    line,
                    lines[line - 1].strip(),
                    source[:start] + mutated_literal + source[end:],
                )


def text_pass(module: str, trees: Sequence[Path], cmd: list[str], kind: str, timeout: float) -> list[Mutant]:
    """The guard or SQL mutants of `module`, shared over `trees` (every n-th mutant to each copy, side by side)."""
    original = (trees[0] / module).read_text()
    gen = guard_mutants if kind == "guards" else sql_mutants
    mutants = list(gen(original))

    def share(k: int) -> list[Mutant]:
        path = trees[k] / module
        out: list[Mutant] = []
        try:
            for op, line, label, mutated in mutants[k :: len(trees)]:
                path.write_text(mutated)
                try:
                    compile(mutated, str(path), "exec")
                except SyntaxError:
                    out.append(Mutant(f"{module}#{kind}", op, line, label, "incompetent"))
                    continue
                survived, _ = run_tests(cmd, trees[k], timeout)
                out.append(Mutant(f"{module}#{kind}", op, line, label, "survived" if survived else "killed"))
        finally:
            path.write_text(original)
        return out

    with ThreadPoolExecutor(max_workers=len(trees)) as pool:
        shares = list(pool.map(share, range(len(trees))))
    return [m for one in shares for m in one]


# --- driver -----------------------------------------------------------------------------------------------------


def run_module(
    module: str, equiv: set[Equivalent], head: bool = False, extra: Sequence[str] = (), workers: int = 1
) -> ModuleResult:
    """One module's mutants, shared over `workers` copies of the tree (one test run at a time in each)."""
    res = ModuleResult(module)
    started = time.monotonic()
    path, _, kind = module.partition("#")
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        tree = make_copy(Path(tmp), head)
        if not (tree / path).exists():
            res.error = "module does not exist in this tree"
            return res
        paths = test_files(module, tree)
        if not paths:
            res.error = "no tests found for it"
            return res
        cmd = test_command(paths, extra)
        t0 = time.monotonic()
        passed, last = run_tests(cmd, tree, BASELINE_TIMEOUT_S)
        if not passed:
            res.error = f"its tests fail on the unmutated tree ({last}): {' '.join(cmd[2:])}"
            return res
        # Four times the unmutated run, measured with one run going: `workers` runs side by side each take longer.
        timeout = max(TIMEOUT_S, 4 * workers * (time.monotonic() - t0))
        trees = [tree]
        for k in range(1, workers):
            trees.append(Path(shutil.copytree(tree, Path(tmp) / f"tree{k}", symlinks=True)))
        if kind:
            res.mutants = text_pass(path, trees, cmd, kind, timeout)
        else:
            res.mutants = cosmic_ray_pass(path, trees, cmd, timeout, equiv)
    for m in res.mutants:
        if m.outcome == "survived" and is_equivalent(m, equiv):
            m.outcome = "equivalent"
    res.seconds = time.monotonic() - started
    RESULTS.mkdir(exist_ok=True)
    result_path(module).write_text(json.dumps(asdict(res), indent=1))
    return res


def result_path(module: str) -> Path:
    return RESULTS / f"{module.replace('/', '_').replace('#', '_')}.json"


def load_result(module: str, equiv: set[Equivalent]) -> ModuleResult | None:
    """The last run of `module` from .mutation/, its survivors re-read against today's equivalents list."""
    path = result_path(module)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    res = ModuleResult(module, [Mutant(**m) for m in data["mutants"]], data["seconds"], data["error"])
    for m in res.mutants:
        if m.outcome in ("survived", "equivalent"):
            m.outcome = "equivalent" if is_equivalent(m, equiv) else "survived"
    return res


def table(results: list[ModuleResult]) -> str:
    rows = [
        "| module | mutants | killed | survived | equivalent | in annotations | score | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            rows.append(f"| `{r.module}` | — | — | — | — | — | not run: {r.error} | |")
            continue
        killed = r.count("killed") + r.count("incompetent")
        rows.append(
            f"| `{r.module}` | {len(r.mutants)} | {killed} | {r.count('survived')} | {r.count('equivalent')} |"
            f" {r.count('annotation')} | {r.score:.1f} % | {r.seconds:.0f} s |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="one of MODULES (repeatable); default: all")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="test runs side by side: each module's mutants are shared over this many copies of the tree (default:"
        " the cores, at most 4); modules run one after another",
    )
    parser.add_argument("--head", action="store_true", help="mutate the last commit, not the work tree on disk")
    parser.add_argument(
        "--pytest-arg", action="append", default=[], help="passed to every pytest run, e.g. --deselect=ID (say why)"
    )
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, run nothing")
    parser.add_argument(
        "--report", action="store_true", help="print the table of the last runs in .mutation/ (equivalents re-read)"
    )
    args = parser.parse_args(argv)
    modules = args.module or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; known: {', '.join(MODULES)}")
    if args.list:
        for m in modules:
            print(m, " ".join(MODULES[m]))
        return 0
    equiv = equivalents()
    if args.report:
        loaded = [load_result(m, equiv) for m in modules]
        print(table([r for r in loaded if r is not None]))
        return 0

    jobs = max(1, args.jobs)

    def one(module: str) -> ModuleResult:
        print(f"MUTATE_START module={module}", flush=True)
        r = run_module(module, equiv, args.head, args.pytest_arg, jobs)
        print(f"MUTATE_DONE module={module} mutants={len(r.mutants)} score={r.score:.1f} {r.error}", flush=True)
        for m in r.mutants:
            if m.outcome == "survived":
                nth = f" (#{m.nth})" if m.nth > 1 else ""
                print(f"  SURVIVED {m.module}:{m.line} {m.operator.removeprefix('core/')} `{m.code}`{nth}", flush=True)
                for d in m.diff.splitlines():
                    if d[:1] in "+-" and d[:3] not in ("+++", "---"):
                        print(f"      {d}", flush=True)
        return r

    started = time.monotonic()
    results = [one(m) for m in modules]
    print()
    print(table(results))
    print(f"\n{len(modules)} module(s) in {time.monotonic() - started:.0f} s, {jobs} test runs side by side")
    low = [r.module for r in results if not r.error and r.score < THRESHOLD]
    if low:
        print(f"\nbelow {THRESHOLD:.0f} %: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
