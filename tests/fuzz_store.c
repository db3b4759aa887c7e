/* libFuzzer harness for the durable gallery's file parsers: the input is a
 * whole gallery directory (key store, log, snapshot, audit log; format in
 * tests/test_store_util.h, st_fuzz_one) that is opened with a fixed key,
 * queried, audited, exported and closed. Seeds: tests/corpus/store (also
 * replayed by `make test`, crash/store_corpus_replay).
 *   make fuzz && build/fuzz/fuzz_store -runs=200000 tests/corpus/store */
#include "test_store_util.h"

static char dir[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* thousands of opens per second: skip hwloc plugin loading */
	setenv("HWLOC_SYNTHETIC", "core:2 pu:1", 1);
	setenv("HWLOC_PLUGINS_PATH", "/nonexistent", 1);
	st_tmpdir(dir, sizeof dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	st_fuzz_one(dir, data, len);
	return 0;
}
