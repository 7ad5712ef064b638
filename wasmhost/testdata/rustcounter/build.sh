#!/bin/sh
# Re-creates counter.wasm from counter.rs with Debian's rustc and its
# wasm32-wasi standard library (apt-get install rustc
# libstd-rust-dev-wasm32; rustup's toolchains work as well once the
# wasm32-wasi target is added). The committed counter.wasm was built with
# rustc 1.63.0 (Debian 1.63.0+dfsg1-2).
set -eu
cd "$(dirname "$0")"
rustc=${RUSTC:-/usr/bin/rustc}
"$rustc" --edition 2021 --target wasm32-wasi --crate-type cdylib -C opt-level=s -C strip=symbols -o counter.wasm counter.rs
