#!/usr/bin/env bash
# Mutation testing of one module with the tests that are meant to guard it (not run in CI: it
# takes minutes). mutmut 3 (the dev extra) changes the module one operator at a time and runs
# the given tests against each change; a mutant the tests still pass is a behaviour no test
# pins down.
#
#   bench/mutation.sh MODULE TEST [TEST ...]
#   bench/mutation.sh app/shell/http/guard.py tests/security/test_guard.py tests/security/test_guard_routes.py
#
# It works in a scratch copy of the worktree (mutmut writes a mutants/ folder and wants its
# settings in pyproject.toml), so the checkout stays clean and several runs can go side by side.
# Pick a FAST selection: unit-level tests that call the module directly. mutmut runs the tests
# that cover a mutant's function once per mutant, and a mutant that makes them hang costs the
# whole per-mutant timeout (mutmut's: about 15 times the tests' own duration, wall clock).
#
# Environment: PYTHON (default .venv/bin/python, else python3), MUTATION_JOBS (default 1: the
# machine is shared; more only on a machine of your own), MUTATION_TIMEOUT_MULTIPLIER (mutmut's
# timeout_multiplier, default 15; lower only on an idle machine, since a timeout counts as
# killed), MUTATION_KEEP=1 keeps the scratch copy (its path is printed) to inspect a survivor
# with `mutmut show NAME` there. Every survivor's diff is printed at the end.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 MODULE TEST [TEST ...]   (paths relative to the repository root)" >&2
    exit 2
fi
module=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x $root/.venv/bin/python ]]; then python=$root/.venv/bin/python; else python=python3; fi
fi
[[ -f $root/$module ]] || { echo "no such module: $module" >&2; exit 2; }
for test in "$@"; do
    [[ -e $root/$test ]] || { echo "no such test path: $test" >&2; exit 2; }
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/metaray-mutation.XXXXXX")
if [[ ${MUTATION_KEEP:-0} != 1 ]]; then trap 'rm -rf "$scratch"' EXIT; fi
# The working tree as it is (uncommitted edits included), without caches or virtualenvs.
(cd "$root" && tar --exclude=.venv --exclude=__pycache__ --exclude=.hypothesis \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache --exclude=mutants \
    -cf - app tests pyproject.toml) | tar -xf - -C "$scratch"

tests_toml=$(printf '"%s", ' "$@")
cat >>"$scratch/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["app"]
only_mutate = ["$module"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]
pytest_add_cli_args_test_selection = [${tests_toml%, }]
use_git_change_detection = false
timeout_multiplier = ${MUTATION_TIMEOUT_MULTIPLIER:-15}
EOF

cd "$scratch"
echo "mutating $module with: $*  (scratch: $scratch)"
"$python" -m mutmut run --max-children "${MUTATION_JOBS:-1}" >"$scratch/run.log" 2>&1 || {
    tail -40 "$scratch/run.log" >&2
    exit 1
}
"$python" -m mutmut results --all true >"$scratch/results.txt" 2>&1 || true
"$python" - "$scratch/results.txt" <<'EOF'
import collections
import sys

counts: collections.Counter[str] = collections.Counter()
survivors = []
for line in open(sys.argv[1]):
    name, _, state = line.strip().rpartition(": ")
    if not name:
        continue
    counts[state] += 1
    if state != "killed":
        survivors.append(f"  {state:>12}  {name}")
total = sum(counts.values())
killed = counts["killed"] + counts["timeout"]
print(f"mutants: {total}  killed: {killed} ({100 * killed / max(total, 1):.1f} %)  "
      + "  ".join(f"{state}: {n}" for state, n in sorted(counts.items())))
print("not killed (see with `mutmut show NAME` in a MUTATION_KEEP=1 scratch copy):")
print("\n".join(survivors) or "  none")
EOF
# Each survivor's change, to triage: kill it with a test, or say why it is equivalent.
grep -v ': killed$' "$scratch/results.txt" | grep -v ': timeout$' | sed 's/: [a-z ]*$//' |
    while read -r name; do
        [[ -n $name ]] || continue
        echo "--- $name"
        "$python" -m mutmut show "$name" 2>/dev/null | grep -E '^[-+] ' || true
    done
