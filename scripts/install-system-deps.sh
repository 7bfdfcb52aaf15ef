#!/usr/bin/env bash
# Installs the system tools gembatch uses, where it can (apt-get as root, Homebrew on macOS);
# otherwise names the command to run. Idempotent: does nothing when everything is present.
set -euo pipefail

# tool → Debian package → Homebrew formula
tools=(
  "redis-server redis-server redis"
  "ffmpeg ffmpeg ffmpeg"
  "ffprobe ffmpeg ffmpeg"
  "pdftotext poppler-utils poppler"
  "qpdf qpdf qpdf"
  "tesseract tesseract-ocr tesseract"
  "espeak-ng espeak-ng espeak-ng"
  "promtool prometheus prometheus"
  "kubectl kubernetes-client kubernetes-cli"
)
missing_apt=()
missing_brew=()
for entry in "${tools[@]}"; do
  read -r tool apt brew <<<"$entry"
  if ! command -v "$tool" >/dev/null 2>&1; then
    missing_apt+=("$apt")
    missing_brew+=("$brew")
  fi
done
if [ "${#missing_apt[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing: ${missing_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" tesseract-ocr-eng >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    echo "installing: ${missing_brew[*]}"
    brew install "${missing_brew[@]}"
  else
    echo "missing system tools. Install them with:" >&2
    echo "  sudo apt-get install ${missing_apt[*]} tesseract-ocr-eng   (Debian/Ubuntu)" >&2
    echo "  brew install ${missing_brew[*]}   (macOS)" >&2
    exit 1
  fi
fi

# Debian's chromium for the web console's browser test (packages/cli/test/console-browser.test.ts);
# never a downloaded browser build. Optional elsewhere: the test skips, saying so, without it.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing: chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "note: no chromium; the console browser test will be skipped (sudo apt-get install chromium, or set CHROMIUM_PATH)" >&2
  fi
fi

if ! command -v pnpm >/dev/null 2>&1; then
  echo "installing pnpm 12.4.2"
  npm install -g pnpm@12.4.2 >/dev/null
fi
