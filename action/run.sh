#!/usr/bin/env bash
# The steps of the GitHub Action in action.yml, kept here so that a test can run them locally.
#   run.sh install             install voice-campaign-runner[postgres] into a venv on GITHUB_PATH
#   run.sh validate|plan|apply run that command in the current folder
# Inputs come as INPUT_* variables (never interpolated into the script: a branch name or a
# folder could carry shell syntax); the runner's own variables (OCTOPUSH_*, RUNNER_STATE) are
# passed through from the step's env.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUMMARY_LIMIT=900000  # GitHub refuses step summaries over 1 MiB

fail() { echo "::error::runner action: $*" >&2; exit 1; }

install() {
    local version="${INPUT_VERSION:-}" spec venv
    if [ -z "$version" ]; then
        spec="$(dirname "$HERE")[postgres]"  # the code of the ref this action was used at
    elif [[ "$version" =~ ^[0-9][0-9A-Za-z.+!-]*$ ]]; then
        spec="voice-campaign-runner[postgres]==$version"
    else
        fail "version: '$version' is not a version number; use e.g. 0.1.0, or leave it empty"
    fi
    venv="${RUNNER_TEMP:-/tmp}/voice-campaign-runner"
    if [ "$(cat "$venv/installed-spec" 2>/dev/null)" != "$spec" ]; then
        python3 -m venv --clear "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
        printf '%s' "$spec" > "$venv/installed-spec"
    fi
    echo "$venv/bin" >> "$GITHUB_PATH"
}

extra_args() {  # INPUT_ARGS split on spaces, as a shell would without quotes or globs
    read -r -a EXTRA <<< "${INPUT_ARGS:-}"
}

fence() {  # a code fence longer than any run of backticks in file $1
    local longest
    longest=$(grep -o '`\+' "$1" | awk '{ if (length > m) m = length } END { print m + 0 }')
    printf '%*s' $((longest < 3 ? 3 : longest + 1)) '' | tr ' ' '`'
}

summarise() {  # title $1, markdown file $2 or, with $3 = text, a log shown as is
    local title="$1" file="$2" kind="${3:-markdown}" f
    [ -n "${GITHUB_STEP_SUMMARY:-}" ] || return 0
    {
        echo "### $title"
        echo
        if [ "$kind" = text ]; then
            f=$(fence "$file")
            echo "${f}text"
            tail -c "$SUMMARY_LIMIT" "$file"
            echo "$f"
        else
            head -c "$SUMMARY_LIMIT" "$file"
        fi
        echo
    } >> "$GITHUB_STEP_SUMMARY"
}

pull_request_number() {
    python3 -c 'import json, sys
event = json.load(open(sys.argv[1], encoding="utf-8"))
print((event.get("pull_request") or {}).get("number") or "")' "${GITHUB_EVENT_PATH:-/dev/null}" 2>/dev/null || true
}

marker() {  # hidden in the comment; one per project folder, so a monorepo gets one each
    printf '<!-- voice-campaign-runner plan: %s -->' "$(printf '%s' "$PROJECT" | tr -c 'A-Za-z0-9._/-' '_')"
}

post_comment() {  # one comment per pull request and folder: edited on each push, never added again
    local body="$1" pr id api="repos/${GITHUB_REPOSITORY}/issues"
    [ "${INPUT_COMMENT:-true}" = true ] || return 0
    pr=$(pull_request_number)
    [ -n "$pr" ] || return 0
    # Not finding the old comment must not pass for "there is none": that would add another.
    id=$(gh api --paginate "$api/$pr/comments" | python3 "$HERE/comment_id.py" "$(marker)") || return 1
    if [ -n "$id" ]; then
        gh api --method PATCH "$api/comments/$id" -F "body=@$body" > /dev/null
    else
        gh api --method POST "$api/$pr/comments" -F "body=@$body" > /dev/null
    fi
}

comment_body() {  # the plan $1 behind the marker (plan's markdown stays under 60,000 characters)
    { marker; echo; cat "$1"; } > "$WORK/comment.md"
}

plan() {
    local code=0 f
    runner plan --detailed-exitcode --format markdown "${EXTRA[@]}" > "$WORK/plan.md" \
        2> "$WORK/errors.txt" || code=$?
    cat "$WORK/errors.txt" >&2
    if [ "$code" -eq 1 ]; then  # the old plan comment must not stay up as if it still held
        f=$(fence "$WORK/errors.txt")
        printf '### runner plan failed\n\n%stext\n%s\n%s\n' "$f" "$(cat "$WORK/errors.txt")" "$f" \
            > "$WORK/plan.md"
    fi
    cat "$WORK/plan.md"
    summarise "runner plan: \`$PROJECT\`" "$WORK/plan.md"
    comment_body "$WORK/plan.md"
    # A pull request from a fork gets a read-only token: the plan still counts, the comment is lost.
    post_comment "$WORK/comment.md" || echo "::warning::runner action: could not post the plan comment"
    output exitcode "$code"
    output has-changes "$([ "$code" -eq 2 ] && echo true || echo false)"
    [ "$code" -ne 1 ]
}

apply() {
    local code=0 verdict="done"
    runner apply --auto-approve "${EXTRA[@]}" 2>&1 | tee "$WORK/apply.txt" || code=$?
    [ "$code" -eq 0 ] || verdict="failed (exit $code)"
    summarise "runner apply: \`$PROJECT\` $verdict" "$WORK/apply.txt" text
    output exitcode "$code"
    return "$code"
}

output() { [ -z "${GITHUB_OUTPUT:-}" ] || echo "$1=$2" >> "$GITHUB_OUTPUT"; }

main() {
    local command="${1:-}"
    case "$command" in
        install) install; return ;;
        validate | plan | apply) ;;
        *) fail "command: '$command' is not one of validate, plan, apply" ;;
    esac
    command -v runner > /dev/null || fail "runner is not installed: run '$0 install' first"
    PROJECT="${INPUT_WORKING_DIRECTORY:-.}"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    extra_args
    case "$command" in
        validate) runner validate "${EXTRA[@]}" ;;
        plan) plan ;;
        apply) apply ;;
    esac
}

main "$@"
