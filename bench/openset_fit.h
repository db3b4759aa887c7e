/* The open-set tail of a calibration, fitted on a TRAIN set (openset_fit.c).
 *
 * Open set asks: what share of strangers has a best score >= t against a
 * gallery of N people (one image each)? Measured, not derived from image
 * pairs: every train image is a non-mated probe against every other train
 * person, each person's images weighted 1/n_images (the chance that image is
 * the one enrolled). That gives the per-comparison rate
 *   q(t) = P(score of a stranger's photo against one enrolled person >= t)
 * and FPIR(t, N) = 1 - (1 - q(t))^N.
 *
 * The tail beyond the data is a MODEL with two parts, fitted per train set:
 *   q(t) = 10^(a + b t)  +  pi * S_gen(t)
 * - a + b t: log-linear bulk of true impostors (least squares over the
 *   measured q in [max(1e-5, q_emp_min), 1e-3]);
 * - pi * S_gen(t): look-alikes. On LFW a few "strangers" score like the
 *   same person because they are (one person under two names:
 *   Yingfan_Wang / Wang_Yingfan), are twins or relatives (the Olsens), or a
 *   photo whose centre face is somebody else. Their scores follow the
 *   genuine distribution S_gen (measured on the train genuine pairs, each
 *   probe's own person weighted like a gallery entry), so no threshold
 *   separates them; pi is their rate per (probe, enrolled person),
 *   counted on the train set above the score u where the bulk model falls
 *   to 1e-7, with the bulk's expected share subtracted.
 *
 * pi rests on a handful of train events (0.5 to 10 on a BLUFR train split),
 * and a threshold set from a point estimate of a rate that thin is too low
 * as often as too high, while the FPIR it lets through grows faster when it
 * is too low than it falls when too high. So the model carries pi's
 * one-sided UPPER confidence bound: the weighted event count k above u is
 * taken as Poisson and replaced by the lambda with P(Poisson(lambda) <= k)
 * = 1 - HKB_OS_CONF (k real: the regularised incomplete gamma). The level
 * was set before looking at any result: 0.90, one trial in ten may exceed
 * its bound. `herken-bench calib-check` checks it on train data only. */
#ifndef HKB_OPENSET_FIT_H
#define HKB_OPENSET_FIT_H

#include <stdio.h>

#include "score_util.h"

#define HKB_OS_CONF 0.90
/* Gallery candidates of the fit: everybody. BLUFR enrols only people with
 * a second photo; fitting on those alone (`calib-check --min-images 2`)
 * keeps ~430 of a train split's 1,500 people, a quarter of the
 * comparisons, and showed no higher stranger rate on train data. */
#define HKB_OS_MIN_IMAGES 1

typedef struct hkb_osfit {
	size_t nprobe, npeople;
	unsigned min_images; /* people with fewer photos are no gallery entry */
	size_t ncand;      /* people with >= min_images photos              */
	double a, b;       /* bulk: log10 q = a + b * score                   */
	double u;          /* pi counted on train scores >= u                  */
	double conf;       /* one-sided confidence of pi (0: point estimate)   */
	double pi;         /* look-alike rate per (probe, enrolled person) at
	                      confidence conf: what the model uses             */
	double pi_point;   /* its point estimate                                */
	double events;     /* train (probe, person) events >= u (weighted)     */
	double q_emp_min;  /* lowest q the data backs with >= 25 events        */
	double *qcum;      /* HKB_NBINS: weighted non-mated mass in bins >= b  */
	double *gcum;      /* HKB_NBINS: weighted genuine mass in bins >= b    */
	double qnorm;      /* (probe, candidate of another person) comparisons */
	double gnorm;      /* total genuine weight                             */
} hkb_osfit;

/* Fit on set s (a train split), pi at HKB_OS_CONF; gallery candidates are
 * the people with >= min_images photos in s (0 or 1: everybody). 0, or -1
 * (memory, or too little data; the measured q_emp is usable whenever qcum
 * is set). */
int hkb_osfit_run(const hkb_set *s, unsigned min_images, hkb_osfit *f);
void hkb_osfit_free(hkb_osfit *f);
/* Re-derive pi at confidence conf in [0, 1) (0: the point estimate). */
void hkb_osfit_set_conf(hkb_osfit *f, double conf);

/* Measured q(t) on the train set; the genuine survival S_gen(t). */
double hkb_osfit_q_emp(const hkb_osfit *f, double t);
double hkb_osfit_sgen(const hkb_osfit *f, double t);
/* The model q(t) (measured where >= 25 events back it, else the model). */
double hkb_osfit_q(const hkb_osfit *f, double t);

/* Appends the "openset" section (herken.h, calibration format 2) to out:
 * comments saying what it is, then "openset <m>" and m rows. */
int hkb_osfit_write(const hkb_osfit *f, FILE *out);

#endif
