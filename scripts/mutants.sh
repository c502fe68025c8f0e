#!/usr/bin/env bash
# Mutation testing (issue 23 §5) of the modules whose logic decides what AWS is told and what
# users get. Not run in CI: every mutant is a rebuild of its crate (~10 s for lambda-image,
# ~30 s for thumbctl on a 2-core machine).
#
#   scripts/mutants.sh [NAME...]     # default: every name below; outputs in mutants.out.<NAME>/
#   MUTANTS_ITERATE=1 scripts/mutants.sh NAME...
#                                    # after adding tests: retest only what the last run of
#                                    # NAME did not catch (cargo-mutants --iterate)
#
# Runs in place (no copy of the tree, no cold build in /tmp): the working tree must be clean
# and is restored by cargo-mutants afterwards (checked). Builds use the feature set of
# scripts/test.sh (`--workspace --features thumbctl/failpoints`), so the warm target/ is reused.
# handler.rs also runs lambda-image's moto tests (tests/handler.rs, tests/events.rs): a moto
# server is started for them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "mutants.sh: the working tree has changes; commit or stash them first (mutants run in place)" >&2
  exit 2
fi

COMMON=(--in-place --timeout 120 --features thumbctl/failpoints -C --workspace --test-workspace=false)
[ -z "${MUTANTS_ITERATE:-}" ] || COMMON+=(--iterate)
# thumbctl has no lib: its unit tests are the `thumbctl` bin's.
THUMBCTL=(-p thumbctl -C --bin=thumbctl)
LAMBDA=(-p lambda-image)

run() { # name, cargo-mutants args...
  local name=$1; shift
  echo "==> $name" >&2
  cargo mutants "${COMMON[@]}" -o "mutants.out.$name" "$@" || true
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "mutants.sh: cargo-mutants left the tree modified after $name:" >&2
    git status --short >&2
    exit 1
  fi
  for f in caught missed timeout unviable; do
    printf '%s %s: %s\n' "$name" "$f" "$(wc -l <"mutants.out.$name/mutants.out/$f.txt")"
  done
}

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(error post_policy permission notification keys handler_unit)
for f in "${files[@]}"; do
  case $f in
    error) run error "${THUMBCTL[@]}" -f src/error.rs -- -- error:: retry:: ;;
    post_policy) run post_policy "${THUMBCTL[@]}" -f src/post_policy.rs -- -- post_policy:: ;;
    # Only the pure functions: ensure/find/delete/drift/put/read call AWS and are covered by
    # the moto integration tests (minutes per mutant), not by unit tests.
    permission) run permission "${THUMBCTL[@]}" -f src/resources/permission.rs \
      -F 'extra|function_of' -- -- resources:: ;;
    notification) run notification "${THUMBCTL[@]}" -f src/resources/notification.rs \
      -E 'in (ensure|put|drift|read|find|delete)$| (ensure|put|drift|read|find|delete) ->' -- -- resources:: ;;
    keys) run keys "${LAMBDA[@]}" -C --lib -f lambda-image/src/keys.rs -- -- keys:: handler:: batch:: ;;
    # The handler's pure decisions (is this item current? the outcome's name), with its unit tests.
    handler_unit) run handler_unit "${LAMBDA[@]}" -C --lib -f lambda-image/src/handler.rs \
      -F 'is_current|Outcome::as_str' -- -- handler:: ;;
    handler)
      # The rest is tested against moto by tests/handler.rs and tests/events.rs: minutes per
      # mutant (each rebuilds and relinks both test binaries, and each run provisions buckets).
      # shellcheck source=scripts/moto.sh
      source scripts/moto.sh
      moto_start
      export THUMBCTL_TEST_ENDPOINT=$MOTO_URL
      run handler "${LAMBDA[@]}" -f lambda-image/src/handler.rs -- --lib --test handler --test events ;;
    *) echo "mutants.sh: unknown file $f" >&2; exit 2 ;;
  esac
done
