# The libFuzzer targets, one source each in tests/fuzz/<name>.cpp with a seed corpus in
# tests/fuzz/corpus/<name>/ and crash inputs kept in tests/fuzz/regressions/<name>/. Read by
# tests/fuzz/CMakeLists.txt (the fuzzers, clang) and tests/CMakeLists.txt (fuzz_replay_test).
set(OUTBOXD_FUZZ_TARGETS url headers_json retry_after response_head config claimed_row)
