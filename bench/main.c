/* herken-bench: benchmark suites. Each suite lives in bench/bench_<name>.c;
 * suites not built into this binary say so. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#pragma weak hk_bench_search
#pragma weak hk_bench_kernels
#pragma weak hk_bench_infer
#pragma weak hk_bench_ingest
#pragma weak hk_bench_lfw
#pragma weak hk_bench_store
#pragma weak hk_bench_pipeline
#pragma weak hk_bench_check
#pragma weak hk_bench_cost
#pragma weak hk_bench_blufr
#pragma weak hk_bench_openset
#pragma weak hk_bench_stream
#pragma weak hk_bench_calibrate

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} suites[] = {
	{"search", hk_bench_search, "exact top-k search vs FAISS and hnswlib"},
	{"kernels", hk_bench_kernels, "distance kernels per ISA tier"},
	{"infer", hk_bench_infer, "model inference on oneDNN"},
	{"ingest", hk_bench_ingest, "io_uring / pread / mmap / fio frame ingest"},
	{"lfw", hk_bench_lfw, "LFW 10-fold verification accuracy"},
	{"blufr", hk_bench_blufr, "LFW BLUFR: VR at FAR 0.1 %, open-set DIR at FAR 1 %"},
	{"openset", hk_bench_openset, "open-set FNIR at FPIR against gallery size (LFW)"},
	{"stream", hk_bench_stream, "recogniser on video: frames/s, decode share, visit-level FNIR"},
	{"calibrate", hk_bench_calibrate, "fit the score -> FMR calibration on BLUFR train data"},
	{"store", hk_bench_store, "durable gallery enrol / replay"},
	{"pipeline", hk_bench_pipeline, "end-to-end recognition"},
	{"check", hk_bench_check, "instruction-count regression check (callgrind)"},
	{"cost", hk_bench_cost, "one check workload (run under callgrind by check)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench SUITE [options]   (SUITE --help for its options)\n\nsuites:\n");
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
		fprintf(f, "  %-9s %s%s\n", suites[i].name, suites[i].what,
		        suites[i].fn ? "" : " (not built)");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
		if (strcmp(argv[1], suites[i].name))
			continue;
		if (!suites[i].fn) {
			fprintf(stderr, "herken-bench: suite '%s' is not built into this binary\n", argv[1]);
			return 2;
		}
		return suites[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "herken-bench: unknown suite '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
