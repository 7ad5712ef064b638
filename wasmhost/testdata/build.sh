#!/bin/sh
# Re-creates the committed test guests (*.wasm) from their WAT sources with
# wabt's wat2wasm (apt-get install wabt). TestGuestsUpToDate fails when a
# committed .wasm differs from what this produces.
set -eu
cd "$(dirname "$0")"
for wat in *.wat; do
	wat2wasm "$wat" -o "${wat%.wat}.wasm"
done
