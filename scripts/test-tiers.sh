#!/usr/bin/env bash
# npm test: every tier in turn (unit, integration, load), each run even when an earlier one
# failed, then one closing line with the sums: `tests: N passed, N failed, N skipped`.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0 rc=0
for tier in unit integration load; do
  out=$(mktemp)
  npx vitest run --project "$tier" 2>&1 | tee "$out"
  [[ ${PIPESTATUS[0]} == 0 ]] || rc=1
  line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -1)
  rm -f "$out"
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2])); skipped=$((skipped + BASH_REMATCH[3]))
  else
    failed=$((failed + 1)); rc=1 # the tier did not finish
  fi
done
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $rc
