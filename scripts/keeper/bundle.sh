#!/usr/bin/env bash
# The run keeper's code is the Python run package (chronos-training/src/chronos_training/, the agent included): its
# Lambda function (src/keeper/training-run-keeper.ts) takes it as a CDK asset from a copy inside the construct
# package's own npm tarball, assets/keeper/chronos_training/ (git-ignored, as the other build outputs in assets/ are).
# Pure Python, boto3 from the Lambda runtime: a copy, no Docker, no pip. projen's `bundle` task runs this
# (bundle:keeper, before compile and the tests). Never bytecode (__pycache__, *.pyc): it would change the asset's hash.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/chronos-training/src/chronos_training"
dst="$root/assets/keeper/chronos_training"
mkdir -p "$dst"
# CI's lanes run this from several legs at once, all from the same sources: a current file is left alone, and each
# writer renames a temporary file of its own into place (a rename is atomic), so no reader sees a partial file and
# the legs end with the same tree.
(cd "$src" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '.*' -print) | sort | while read -r rel; do
  rel="${rel#./}"
  mkdir -p "$dst/$(dirname "$rel")"
  cmp -s "$src/$rel" "$dst/$rel" && continue
  tmp="$(mktemp "$dst/$rel.XXXXXX")"
  cp "$src/$rel" "$tmp" && chmod 644 "$tmp"
  mv -f "$tmp" "$dst/$rel"
done
# Files the package no longer has (and stray bytecode) leave the copy; another leg's temporary file (a source file's
# name plus a suffix) stays; -f: another leg may have removed the same file first.
(cd "$dst" && find . -type f -print) | while read -r rel; do
  rel="${rel#./}"
  [ -e "$src/$rel" ] && [[ "$rel" != *__pycache__/* && "$rel" != *.pyc ]] && continue
  base="${rel%.*}"
  [ "$base" != "$rel" ] && [ -f "$src/$base" ] && continue
  rm -f "$dst/$rel"
done
find "$dst" -depth -type d -name __pycache__ -empty -delete 2>/dev/null || true
