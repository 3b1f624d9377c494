#!/usr/bin/env bash
# Refreshes crudauth's shipped list of disposable email domains (feature `disposable-email`)
# from the CC0 list at https://github.com/disposable-email-domains/disposable-email-domains,
# writing a header that names the source, the commit and its date.
#
#   scripts/update-disposable-domains.sh            # the newest commit of the default branch
#   scripts/update-disposable-domains.sh <commit>   # a chosen commit
#
# Review the diff (`git diff --stat crudauth/data`) before committing it.
set -euo pipefail

repo_url=https://github.com/disposable-email-domains/disposable-email-domains.git
out="$(cd "$(dirname "$0")/.." && pwd)/crudauth/data/disposable_email_blocklist.conf"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone --quiet --filter=blob:none "$repo_url" "$work/list"
if [[ $# -ge 1 ]]; then
    git -C "$work/list" checkout --quiet "$1"
fi
commit=$(git -C "$work/list" rev-parse HEAD)
date=$(git -C "$work/list" log -1 --format=%cs)
list="$work/list/disposable_email_blocklist.conf"

# The list must look like a list of lower-case domains: refuse anything else rather than
# ship it.
if grep -vEq '^[a-z0-9.-]+$' "$list"; then
    echo "unexpected line in the upstream list:" >&2
    grep -vE '^[a-z0-9.-]+$' "$list" | head -5 >&2
    exit 1
fi
count=$(wc -l <"$list")
if [[ $count -lt 1000 ]]; then
    echo "the upstream list has only $count lines; refusing" >&2
    exit 1
fi

{
    echo "# Disposable email domains, one a line (crudauth's shipped list, feature \`disposable-email\`)."
    echo "# Source: https://github.com/disposable-email-domains/disposable-email-domains"
    echo "# File: disposable_email_blocklist.conf, commit $commit ($date)"
    echo "# License: CC0 1.0 Universal (public domain dedication)."
    echo "# Updated by scripts/update-disposable-domains.sh; do not edit by hand."
    cat "$list"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $count domains from $commit ($date) to $out"
