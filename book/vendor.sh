#!/usr/bin/env bash
# Vendor the book's JavaScript from npm into book/vendor/ so built pages load nothing over http(s).
# Idempotent: does nothing when the assets are already there.
set -euo pipefail
cd "$(dirname "$0")"
VENDOR=vendor
if [[ -f $VENDOR/mathjax/tex-mml-chtml.js && -f $VENDOR/require.js && -f $VENDOR/html-manager/embed-amd.js ]]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm install --no-audit --no-fund --silent --no-save \
   mathjax@3.2.2 requirejs@2.3.4 @jupyter-widgets/html-manager@1.0.6 >/dev/null)
rm -rf "$VENDOR" && mkdir -p "$VENDOR/html-manager"
cp -r "$tmp/node_modules/mathjax/es5" "$VENDOR/mathjax"
cp "$tmp/node_modules/requirejs/require.js" "$VENDOR/require.js"
# dist/ holds the manager's bundles and the Font Awesome fonts (*.woff2, *.woff, *.ttf, ...) they
# load; book/_ext/book_assets.py points require.js at this folder so those requests find them.
find "$tmp/node_modules/@jupyter-widgets/html-manager/dist" -maxdepth 1 -type f ! -name '*.map' \
  -exec cp {} "$VENDOR/html-manager/" \;
echo "vendored MathJax 3.2.2, require.js 2.3.4 and @jupyter-widgets/html-manager 1.0.6 into book/$VENDOR"
