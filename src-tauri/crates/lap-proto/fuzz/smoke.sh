#!/usr/bin/env bash
# Smoke-runs every target of the fuzz crate it sits in for a few seconds each: lap-proto's,
# and lapwing-core's (whose smoke.sh is a link to this one). With 600 seconds it is a
# campaign (tests/RELIABILITY.md).
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET]      (default 20)
#
# - installs cargo-fuzz if it is missing (`cargo install cargo-fuzz --locked`);
# - works with the stable toolchain alone: cargo-fuzz needs nightly-only rustc flags
#   (-Zsanitizer, sancov passes), which RUSTC_BOOTSTRAP=1 unlocks on stable;
# - builds all targets once, then runs each for SECONDS with the committed seeds
#   (fuzz/seeds/<target>, read-only) plus a throw-away corpus directory;
# - prints each target's executions, exec/s and coverage (cov/ft) from libFuzzer's final
#   stats, and exits non-zero if any target crashed (the input is kept in
#   fuzz/artifacts/<target>/ and the log path is printed).
#
# Environment: CARGO_TARGET_DIR (default: fuzz/target), FUZZ_SANITIZER (address, the
# cargo-fuzz default, or none: about twice the exec/s; lap-proto has no unsafe code, the
# sanitizer only watches its dependencies), FUZZ_PROFILE (release, the default, or dev:
# unoptimised with overflow checks, built in less than half the time, for a short smoke).
set -euo pipefail

secs="${1:-20}"
case "$secs" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 2
	;;
esac

# The directory of the path it was started by, not of the link's target.
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate_dir="$(dirname "$fuzz_dir")"
target_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
sanitizer="${FUZZ_SANITIZER:-address}"
profile=()
case "${FUZZ_PROFILE:-release}" in
release) ;;
dev) profile=(--dev) ;;
*)
	echo "FUZZ_PROFILE is release or dev, not ${FUZZ_PROFILE}" >&2
	exit 2
	;;
esac
export CARGO_TARGET_DIR="$target_dir"
# cargo-fuzz passes -Z flags to rustc; this lets the stable compiler accept them.
export RUSTC_BOOTSTRAP=1

start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "== cargo-fuzz missing: cargo install cargo-fuzz --locked"
	cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
	echo "error: libfuzzer-sys compiles libFuzzer and needs a C++ compiler (apt-get install g++)" >&2
	exit 1
fi

# Cargo caches rustc's target probe in the target dir without keying it on RUSTC_BOOTSTRAP:
# after one `cargo fuzz` run without it, every later build replays "the option `Z` is only
# accepted on the nightly compiler". The file is only a cache.
rm -f "$target_dir/.rustc_info.json"

cd "$crate_dir"
echo "== building fuzz targets (sanitizer: $sanitizer, profile: ${FUZZ_PROFILE:-release}, target dir: $target_dir)"
build_start=$(date +%s)
cargo fuzz build "${profile[@]}" --target-dir "$target_dir" --sanitizer "$sanitizer"
build_secs=$(($(date +%s) - build_start))

mapfile -t targets < <(cargo fuzz list)
work="$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$crate_dir")-fuzz.XXXXXX")"
failed=()
summary=()

for t in "${targets[@]}"; do
	corpus="$work/corpus-$t"
	log="$work/$t.log"
	mkdir -p "$corpus"
	seeds="$fuzz_dir/seeds/$t"
	[ -d "$seeds" ] || seeds=""
	echo "== $t: ${secs}s"
	rc=0
	# shellcheck disable=SC2086 # $seeds is empty or one path without spaces
	cargo fuzz run "${profile[@]}" --target-dir "$target_dir" --sanitizer "$sanitizer" "$t" "$corpus" $seeds -- \
		-max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || rc=$?
	done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
	execs="$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)"
	rate="$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -n 1)"
	cov="$(grep -oE 'cov: [0-9]+' <<<"$done_line" | cut -d' ' -f2 || true)"
	ft="$(grep -oE 'ft: [0-9]+' <<<"$done_line" | cut -d' ' -f2 || true)"
	corp="$(grep -oE 'corp: [0-9]+/[0-9a-zA-Z]+' <<<"$done_line" | cut -d' ' -f2 || true)"
	if [ "$rc" -ne 0 ] || [ -z "$done_line" ]; then
		failed+=("$t")
		status="FAILED (exit $rc)"
		echo "---- $t failed; last lines of $log:"
		tail -n 40 "$log"
		echo "----"
	else
		status="ok"
	fi
	line="$(printf '%-18s %-16s execs %-10s exec/s %-7s cov %-6s ft %-6s corpus %s' \
		"$t" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")"
	echo "$line"
	summary+=("$line")
done

total_secs=$(($(date +%s) - start))
echo
echo "== summary (${secs}s per target, build ${build_secs}s, total ${total_secs}s)"
printf '%s\n' "${summary[@]}"

if [ "${#failed[@]}" -ne 0 ]; then
	echo "FAILED: ${failed[*]} (crash inputs in $fuzz_dir/artifacts/<target>/, logs in $work)" >&2
	exit 1
fi
rm -rf "$work"
