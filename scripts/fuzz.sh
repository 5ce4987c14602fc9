#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags that
# cargo-fuzz passes (-Zsanitizer=address); the sanitizer runtimes ship with stable's std.
# Builds with AddressSanitizer, debug assertions and overflow checks (cargo fuzz's default).
# Needs cargo-fuzz: `cargo install cargo-fuzz --locked`.
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET) and keeps what it learns in
# fuzz/corpus/TARGET (git-ignored); a crash is saved under fuzz/artifacts/TARGET and the script
# exits non-zero. Reproduce one with: cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(parse_command config engine)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

# Stable rustc accepts the -Z flags only with this; a nightly compiler ignores it.
export RUSTC_BOOTSTRAP=1
# The fuzz build (other RUSTFLAGS, instrumented) stays out of the main build's target dir.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
# cargo caches `rustc --print` answers in .rustc_info.json, keyed without RUSTC_BOOTSTRAP: a
# failure cached by an earlier run without it would stick, so start that cache afresh.
rm -f "$CARGO_TARGET_DIR/.rustc_info.json"

# MASSAGED_FUZZ_JOBS=N runs N libFuzzer processes per target (default 1: the machine is shared).
parallel=()
if [ "${MASSAGED_FUZZ_JOBS:-1}" -gt 1 ]; then
  parallel=("-jobs=$MASSAGED_FUZZ_JOBS" "-workers=$MASSAGED_FUZZ_JOBS")
fi

echo "building fuzz targets (stable, RUSTC_BOOTSTRAP=1, AddressSanitizer)"
cargo fuzz build

status=0
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  dict=()
  if [ -f "fuzz/dict/$target.dict" ]; then
    dict=("-dict=fuzz/dict/$target.dict")
  fi
  echo "=== fuzzing $target for ${seconds}s ==="
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: well under the machine's memory.
  if ! cargo fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1 "${parallel[@]}" "${dict[@]}"; then
    echo "!!! $target found a crash: see fuzz/artifacts/$target/" >&2
    status=1
  fi
done
exit "$status"
