#!/usr/bin/env bash
# Fails if any C file in the tree differs from .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard -- '*.c' '*.h')
clang-format --dry-run --Werror $files
echo "check-format: $(echo "$files" | wc -w) files clean"
