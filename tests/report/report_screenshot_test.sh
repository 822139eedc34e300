#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renders a corpus patient's trend report in headless Chromium and checks the screenshot is not blank.
# Usage: report_screenshot_test.sh LABWATCH_BINARY DATA_DIR [SCREENSHOT_COPY]
set -euo pipefail
bin="$1"; data="$2"; copy="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"
chromium="$(command -v chromium || true)"
if [ -z "$chromium" ]; then
  echo "chromium is not installed (scripts/setup installs it)"; exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/labwatch.xml" <<'XML'
<labwatch><sources>
  <source facility="SGH" authority="SGH" timezone="America/Phoenix" files="c_sgh*"/>
  <source facility="QDX" authority="QDX" timezone="America/New_York" files="a_qdx*"/>
</sources></labwatch>
XML
"$bin" ingest --config "$work/labwatch.xml" --db "$work/lw.db" "$data"/corpus/c_sgh_0*.hl7 "$data"/corpus/a_qdx_0*.hl7 >/dev/null 2>&1
"$bin" report --config "$work/labwatch.xml" --db "$work/lw.db" --patient 'SGH|SGH948271' --out "$work/report.html" >/dev/null
grep -q '<svg class="chart"' "$work/report.html"

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$work/profile" \
  --window-size=1000,1400 --screenshot="$work/report.png" "file://$work/report.html" >"$work/chromium.log" 2>&1 || {
  cat "$work/chromium.log"; exit 1; }
stats="$(/usr/bin/python3 "$here/png_stats.py" "$work/report.png")"
echo "screenshot: $stats"
distinct="$(sed -E 's/.*distinct=([0-9]+).*/\1/' <<<"$stats")"
nonwhite="$(sed -E 's/.*nonwhite=([0-9.]+).*/\1/' <<<"$stats")"
# A blank page has one colour; a report with text, bands and points has many and some ink.
if [ "$distinct" -lt 8 ] || awk -v n="$nonwhite" 'BEGIN{exit !(n < 0.02)}'; then
  echo "FAIL: the screenshot looks blank ($stats)"; exit 1
fi
if [ -n "$copy" ]; then cp "$work/report.png" "$copy"; fi
echo "ok"
