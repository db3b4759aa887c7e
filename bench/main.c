/* herken-bench: benchmark suites. Each suite lives in bench/bench_<name>.c
 * (check and cost in bench_check.c); every suite is always built. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} suites[] = {
	{"search", hk__bench_search, "exact top-k search vs FAISS and hnswlib"},
	{"kernels", hk__bench_kernels, "distance kernels per ISA tier"},
	{"infer", hk__bench_infer, "model inference on oneDNN"},
	{"ingest", hk__bench_ingest, "io_uring / pread / mmap / fio frame ingest"},
	{"lfw", hk__bench_lfw, "LFW 10-fold verification accuracy"},
	{"cfp", hk__bench_cfp, "CFP frontal-frontal / frontal-profile accuracy, detector recall by pose"},
	{"blufr", hk__bench_blufr, "LFW BLUFR: VR at FAR 0.1 %, open-set DIR at FAR 1 %"},
	{"calibrate", hk__bench_calibrate, "fit the score -> FMR calibration on BLUFR train data"},
	{"calib-check", hk__bench_calib_check, "the open-set calibration tail checked on train halves"},
	{"embedders", hk__bench_embedders, "second embedder (dlib) alone and fused: LFW, cfp_dev, BLUFR, enrolment, cost"},
	{"openset", hk__bench_openset, "open-set FNIR at FPIR against gallery size (LFW)"},
	{"stream", hk__bench_stream, "recogniser on video: frames/s, decode share, visit-level FNIR"},
	{"store", hk__bench_store, "durable gallery enrol / replay"},
	{"pipeline", hk__bench_pipeline, "end-to-end recognition"},
	{"int8-calibrate", hk__bench_int8_calibrate, "int8 activation ranges (LFW View 1 training images)"},
	{"check", hk__bench_check, "instruction-count regression check (callgrind)"},
	{"cost", hk__bench_cost, "one check workload (run under callgrind by check)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench SUITE [options]   (SUITE --help for its options)\n\nsuites:\n");
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
		fprintf(f, "  %-9s %s\n", suites[i].name, suites[i].what);
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
		return suites[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "herken-bench: unknown suite '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
