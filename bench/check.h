/* Workloads and accuracy guards of `herken-bench check` (bench_check.c).
 * Other bench files add theirs by defining hkc_extra_workloads() /
 * hkc_extra_guards() (weak references), e.g. in bench/check_<domain>.c. */
#ifndef HKC_CHECK_H
#define HKC_CHECK_H

#include <stddef.h>

#define HKC_SKIP (-2) /* returned when data or models are absent */

typedef struct hkc_workload {
	const char *name;
	const char *unit; /* what one item is: queries, faces, frames ... */
	/* Runs the workload; the measured region lies between hkc_start() and
	 * hkc_stop(). Returns the number of items done, HKC_SKIP, or -1. */
	long (*run)(void);
	int per_isa; /* also measure at HERKEN_MAX_ISA=avx2 and scalar */
	int slow;    /* left out of `check --quick` (the CI gate): minutes
	                under callgrind */
} hkc_workload;

typedef struct hkc_guard {
	const char *name;
	/* Computes the figure into *value: 0, HKC_SKIP or -1 on error. */
	int (*run)(double *value);
	double tolerance;           /* allowed |now - baseline|          */
	int (*floor_ok)(double v);  /* optional absolute floor (NULL: none) */
} hkc_guard;

void hkc_start(void);
void hkc_stop(void);

/* Optional registries from other files (weak). */
const hkc_workload *hkc_extra_workloads(size_t *n);
const hkc_guard *hkc_extra_guards(size_t *n);

#endif
