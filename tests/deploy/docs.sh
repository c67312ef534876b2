#!/usr/bin/env bash
# The Markdown stands alone: links stay inside the repository and resolve, the
# README's Layout paths exist, no table is split by a blank line.
source "$(dirname "$0")/lib.sh"
python3 "$DEPLOY_TESTS/check_docs.py" "$REPO"
