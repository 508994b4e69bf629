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
# sed reads to the end: head would close the pipe and pipefail would fail the run (SIGPIPE, 141)
pdftotext -v 2>&1 | sed -n 1p
