/* libFuzzer harness for the calibration parser (a calibration file is
 * input the library may be handed: hk_calib_load). Build: `make fuzz`;
 * run: build/fuzz/fuzz_calib -runs=1000000 tests/corpus/calib core/calib
 * tests/test_calib.c (calib_fuzz/corpus_replay) replays the corpus in the
 * normal test run. */
#include "fuzz_calib_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_calib_one(data, size))
		__builtin_trap();
	return 0;
}
