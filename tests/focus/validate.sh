#!/usr/bin/env bash
# Validate a FOCUS 1.2 CostAndUsage file (.csv or .parquet) offline with focus-validator 2.2.1.
#   validate.sh FILE [extra focus-validator args...]
# Prints the validator output; exit status:
#   0  summary line found and Fail == 0 (or every failed rule is in SPOTCOST_FOCUS_ALLOW_FAILS)
#   1  Fail > 0
#   2  usage error, validator missing, or no summary line
# Environment:
#   SPOTCOST_FOCUS_VENV        venv made by setup-validator.sh (default: $HOME/.cache/spotcost/focus-venv)
#   SPOTCOST_FOCUS_VERSION     FOCUS version to validate against (default 1.2)
#   SPOTCOST_FOCUS_CRITERIA    value for --applicability-criteria (comma list, ALL, or "spotcost" for the
#                              features spotcost's export claims, see README.md); default: none
#   SPOTCOST_FOCUS_DETAILED_LOG copy the validator's debug log (focus_validator_detailed.log) here
#   SPOTCOST_FOCUS_ALLOW_FAILS comma list of rule ids accepted as known validator false positives
#                              (default empty = strict). E.g. InvoiceId-C-005-C, see README.md.
set -uo pipefail

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 FILE.csv|FILE.parquet [focus-validator args...]" >&2
  exit 2
fi
FILE="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; shift
VENV="${SPOTCOST_FOCUS_VENV:-$HOME/.cache/spotcost/focus-venv}"
VERSION="${SPOTCOST_FOCUS_VERSION:-1.2}"
CRITERIA="${SPOTCOST_FOCUS_CRITERIA:-}"
ALLOW="${SPOTCOST_FOCUS_ALLOW_FAILS:-}"

if [ "$CRITERIA" = spotcost ]; then
  CRITERIA=ACCOUNT_NAMING_SUPPORTED,BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED,REGION_SUPPORTED,RESOURCE_TYPE_ASSIGNMENT_SUPPORTED,SUB_ACCOUNT_SUPPORTED,TAGGING_SUPPORTED
fi

if [ ! -x "$VENV/bin/focus-validator" ]; then
  echo "validate.sh: no validator in $VENV; run setup-validator.sh first" >&2
  exit 2
fi

# The validator opens focus_validator/rules/currency_codes.csv relative to the cwd.
SITE="$("$VENV/bin/python" -c 'import focus_validator, os; print(os.path.dirname(os.path.dirname(os.path.abspath(focus_validator.__file__))))')" || exit 2

case "$FILE" in
  *.parquet|*.PARQUET|*.pq) FMT=parquet ;;
  *.csv|*.CSV) FMT=csv ;;
  *) echo "validate.sh: cannot tell format of $FILE (want .csv or .parquet)" >&2; exit 2 ;;
esac

# The loader picks its reader from a lower-case ".csv"/".parquet" suffix; other names go
# through stdin with an explicit --data-format.
case "$FILE" in
  *.csv|*.parquet) SRC=(--data-file "$FILE"); IN=/dev/null ;;
  *) SRC=(--data-file - --data-format "$FMT"); IN="$FILE" ;;
esac
EXTRA=()
[ -n "$CRITERIA" ] && EXTRA+=(--applicability-criteria "$CRITERIA")

# Run in a scratch directory holding a symlink to the package: the relative currency_codes.csv path
# resolves, and the validator's ever-growing focus_validator_detailed.log (written to the cwd) is
# thrown away afterwards (kept as $SPOTCOST_FOCUS_DETAILED_LOG if that is set).
WORK="$(mktemp -d)"; OUT="$WORK/console.txt"
trap '[ -n "${SPOTCOST_FOCUS_DETAILED_LOG:-}" ] && [ -f "$WORK/focus_validator_detailed.log" ] && cp "$WORK/focus_validator_detailed.log" "$SPOTCOST_FOCUS_DETAILED_LOG"; rm -rf "$WORK"' EXIT
ln -s "$SITE/focus_validator" "$WORK/focus_validator"
( cd "$WORK" && "$VENV/bin/focus-validator" "${SRC[@]}" \
    --validate-version "$VERSION" --block-download "${EXTRA[@]}" "$@" <"$IN" ) 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}

SUMMARY="$(grep -Eo 'Total: *[0-9]+ *\| *Pass: *[0-9]+ *\| *Fail: *[0-9]+ *\| *Skipped: *[0-9]+' "$OUT" | tail -n1)"
if [ -z "$SUMMARY" ]; then
  echo "validate.sh: FAILED - no summary line in validator output (exit $rc)" >&2
  exit 2
fi
FAIL="$(sed -E 's/.*Fail: *([0-9]+).*/\1/' <<<"$SUMMARY")"
if [ "$FAIL" -eq 0 ]; then
  echo "validate.sh: OK - $SUMMARY" >&2
  exit 0
fi

# Failed rule ids, one per line (console lines look like "❌ RuleId: FAIL  (...)").
FAILED_IDS="$(sed -nE 's/^.*❌ *([A-Za-z]+-[A-Z]-[0-9]{3}-[A-Z]): FAIL.*/\1/p' "$OUT" | sort -u)"
if [ -n "$ALLOW" ] && [ "$(wc -l <<<"$FAILED_IDS")" -eq "$FAIL" ]; then
  UNEXPECTED="$(comm -23 <(printf '%s\n' "$FAILED_IDS") <(tr ', ' '\n\n' <<<"$ALLOW" | sed '/^$/d' | sort -u))"
  if [ -z "$UNEXPECTED" ]; then
    echo "validate.sh: OK (only allowed known false positives failed: $(tr '\n' ' ' <<<"$FAILED_IDS")) - $SUMMARY" >&2
    exit 0
  fi
  echo "validate.sh: unexpected failures: $(tr '\n' ' ' <<<"$UNEXPECTED")" >&2
fi
echo "validate.sh: FAILED - $SUMMARY" >&2
exit 1
