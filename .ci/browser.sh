#!/usr/bin/env bash
# What tests/report.rs needs to render the HTML report as a person would see it:
# Debian's headless Chromium, and pdftotext (poppler-utils) to read the printed page.
# INTAKE_TEST_CHROMIUM names another Chromium binary instead.
set -euo pipefail
missing=()
if [ -z "${INTAKE_TEST_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then missing+=(chromium); fi
command -v pdftotext >/dev/null || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
"${INTAKE_TEST_CHROMIUM:-chromium}" --version
pdftotext -v 2>&1 | head -1
