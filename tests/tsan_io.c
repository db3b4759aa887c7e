/* TSan driver for the frame-source stress test (Criterion cannot run under
 * ThreadSanitizer): the same test, built standalone. */
#define HK_STRESS_MAIN 1
#include "test_io_stress.c"
