/* herken-bench openset: open-set identification on LFW against gallery size
 * (NIST FRTE definitions). Gallery = one photo of each enrolled person,
 * mated probes = their other photos, non-mated probes = every photo of
 * people not enrolled. FNIR at FPIR 1e-2 and 1e-3 (threshold = the
 * non-mated best score at rank round(FPIR x non-mated probes)) for N = 100
 * up to every person LFW allows, averaged over random splits; and at the
 * threshold the shipped calibration gives for that FPIR and N.
 *
 * People of BLUFR trial 1's train split (what the shipped calibration was
 * fitted on) are left out, so the calibrated thresholds are measured on
 * people they never saw. The extrapolation to N = 1e5 and 1e6 is a MODEL
 * (printed with its formula), not a measurement. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "blufr_common.h"
#include "score_util.h"

#define D HK_EMBED_DIM
#define MAXN 16
#define NF 2

static const double fpirs[NF] = {1e-2, 1e-3};

static int cmp_desc_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y) - (x > y);
}

typedef struct split_res {
	size_t n_mated[MAXN], n_non;
	double fnir[NF][MAXN];     /* at the empirical FPIR threshold        */
	double cal_fpir[NF][MAXN]; /* measured FPIR at the calibrated thr.   */
	double cal_fnir[NF][MAXN];
	double *mate_score;        /* at the largest N: mated probes' own score */
	uint8_t *mate_first;       /* ... and whether it ranked first          */
	size_t nmate;
} split_res;

static const char openset_usage[] =
    "usage: herken-bench openset [--json] [--splits K] [--out PREFIX] [options]\n"
    "Open-set FNIR at FPIR 1e-2 and 1e-3 against gallery size on LFW (one photo per\n"
    "enrolled person), K random splits (default 5); plot PREFIX.svg.\n";

int hk__bench_openset(int argc, char **argv)
{
	hkb_blufr_opts o = {.centre = 1};
	int json = 0;
	long splits = 5;
	const char *prefix = "openset";
	for (int i = 1; i < argc; i++) {
		int a = hkb_blufr_arg(argc, argv, &i, &o);
		if (a == 1)
			continue;
		if (a == 0 && !strcmp(argv[i], "--json")) {
			json = 1;
		} else if (a == 0 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
			fputs(openset_usage, stdout);
			fputs(hkb_blufr_usage, stdout);
			return 0;
		} else if (a == 0 && !strcmp(argv[i], "--out") && i + 1 < argc) {
			prefix = argv[++i];
		} else if (a == 0 && !strcmp(argv[i], "--splits") && i + 1 < argc &&
		           hkb_parse_list(argv[i + 1], &splits, 1) == 1 && splits >= 1 &&
		           splits <= 100) {
			i++;
		} else {
			fprintf(stderr, "openset: bad argument '%s'\n%s", argv[i], openset_usage);
			return 2;
		}
	}
	double wall0 = hkb_now();
	hkb_blufr b;
	int rc = hkb_blufr_load(&o, "openset", &b);
	if (rc)
		return rc;
	hk_calib *cal = NULL;
	if (hkb_blufr_calib(&b, &cal)) {
		fprintf(stderr, "openset: %s\n", hk_last_error());
		hkb_blufr_free(&b);
		return 3;
	}
	/* People: images per label, excluding trial 1's train people. */
	uint32_t maxl = 0;
	for (size_t i = 0; i < b.n; i++)
		maxl = b.label[i] > maxl ? b.label[i] : maxl;
	uint32_t *count = calloc(maxl + 1, sizeof *count);
	uint8_t *excluded = calloc(maxl + 1, 1);
	size_t *first = malloc((maxl + 1) * sizeof *first);
	for (size_t i = 0; i < b.n; i++)
		if (b.role[1][i] == 'r')
			excluded[b.label[i]] = 1;
	for (uint32_t l = 0; l <= maxl; l++)
		first[l] = SIZE_MAX;
	size_t npeople = 0, nimg = 0;
	for (size_t i = 0; i < b.n; i++) {
		uint32_t l = b.label[i];
		if (excluded[l])
			continue;
		nimg++;
		if (!count[l]++) {
			first[l] = i;
			npeople++;
		}
	}
	uint32_t *people = malloc(npeople * sizeof *people);
	size_t k = 0;
	for (uint32_t l = 0; l <= maxl; l++)
		if (count[l] && !excluded[l])
			people[k++] = l;
	/* Strangers: a third of the people; enrolment pool: the rest. */
	size_t nstr = npeople / 3, npool = npeople - nstr;
	size_t sizes[MAXN], nsz = 0;
	const size_t want[] = {100, 200, 500, 1000, 2000};
	for (size_t z = 0; z < sizeof want / sizeof want[0]; z++)
		if (want[z] < npool)
			sizes[nsz++] = want[z];
	sizes[nsz++] = npool;

	split_res *sr = calloc((size_t)splits, sizeof *sr);
	int32_t *pos = malloc((maxl + 1) * sizeof *pos); /* label -> gallery position */
	hkb_set gal;
	if (!sr || !pos || hkb_set_alloc(&gal, npool)) {
		hkb_blufr_free(&b);
		return 3;
	}
	float *sc = malloc(npool * sizeof *sc);
	double t_score = 0;
	uint64_t comparisons = 0;
	for (long s = 0; s < splits; s++) {
		hkb_rng rng;
		hkb_rng_seed(&rng, 7000 + (uint64_t)s);
		for (size_t i = npeople; i-- > 1;) {
			size_t j = hkb_rng_next(&rng) % (i + 1);
			uint32_t t = people[i];
			people[i] = people[j];
			people[j] = t;
		}
		for (uint32_t l = 0; l <= maxl; l++)
			pos[l] = -1; /* stranger (or excluded) */
		for (size_t g = 0; g < npool; g++) {
			uint32_t l = people[nstr + g];
			pos[l] = (int32_t)g;
			memcpy(gal.x + g * D, b.emb + first[l] * D, D * sizeof(float));
			gal.ok[g] = b.ok[first[l]];
			gal.label[g] = l;
		}
		/* Probes: best over each gallery prefix. */
		size_t nprobe = nimg - npool;
		double *nonm[MAXN];
		size_t nn = 0;
		for (size_t z = 0; z < nsz; z++)
			nonm[z] = malloc(nprobe * sizeof **nonm);
		float *mbest = malloc(nprobe * MAXN * sizeof *mbest), *mown = malloc(nprobe * sizeof *mown);
		uint8_t *mcorr = malloc(nprobe * MAXN);
		int32_t *mpos = malloc(nprobe * sizeof *mpos);
		size_t nm = 0;
		double t0 = hkb_now();
		for (size_t i = 0; i < b.n; i++) {
			uint32_t l = b.label[i];
			if (excluded[l] || (pos[l] >= 0 && first[l] == i))
				continue; /* left out, or the enrolled photo itself */
			hkb_scan(&gal, b.emb + i * D, b.ok[i], 0, npool, sc);
			comparisons += npool;
			float best = -INFINITY;
			size_t bi = 0, z = 0;
			for (size_t g = 0; g < npool; g++) {
				if (sc[g] > best) {
					best = sc[g];
					bi = g;
				}
				while (z < nsz && g + 1 == sizes[z]) {
					if (pos[l] < 0) {
						nonm[z][nn] = best;
					} else {
						mbest[nm * MAXN + z] = best;
						mcorr[nm * MAXN + z] = bi == (size_t)pos[l];
					}
					z++;
				}
			}
			if (pos[l] < 0) {
				nn++;
			} else {
				mown[nm] = sc[pos[l]];
				mpos[nm] = pos[l];
				nm++;
			}
		}
		t_score += hkb_now() - t0;
		split_res *r = &sr[s];
		r->n_non = nn;
		for (size_t z = 0; z < nsz; z++) {
			qsort(nonm[z], nn, sizeof **nonm, cmp_desc_d);
			size_t mated = 0;
			for (size_t m = 0; m < nm; m++)
				mated += (size_t)mpos[m] < sizes[z];
			r->n_mated[z] = mated;
			for (int f = 0; f < NF; f++) {
				size_t rk = (size_t)llround(fpirs[f] * nn);
				double thr = nonm[z][(rk < 1 ? 1 : rk) - 1];
				float cthr;
				int have_c = !hk_calib_score_at_fpir(cal, fpirs[f], sizes[z], &cthr);
				size_t hit = 0, chit = 0, cfp = 0;
				for (size_t m = 0; m < nm; m++) {
					if ((size_t)mpos[m] >= sizes[z])
						continue;
					int c = mcorr[m * MAXN + z];
					hit += c && mbest[m * MAXN + z] >= thr;
					chit += have_c && c && mbest[m * MAXN + z] >= cthr;
				}
				for (size_t q = 0; have_c && q < nn; q++)
					cfp += nonm[z][q] >= cthr;
				r->fnir[f][z] = 1.0 - (double)hit / mated;
				r->cal_fnir[f][z] = have_c ? 1.0 - (double)chit / mated : NAN;
				r->cal_fpir[f][z] = have_c ? (double)cfp / nn : NAN;
			}
		}
		/* Mated scores at the largest gallery, for the model. */
		r->mate_score = malloc(nm * sizeof *r->mate_score);
		r->mate_first = malloc(nm);
		r->nmate = nm;
		for (size_t m = 0; m < nm; m++) {
			r->mate_score[m] = mown[m];
			r->mate_first[m] = mcorr[m * MAXN + nsz - 1];
		}
		for (size_t z = 0; z < nsz; z++)
			free(nonm[z]);
		free(mbest);
		free(mown);
		free(mcorr);
		free(mpos);
		fprintf(stderr, "openset: split %ld/%ld done\n", s + 1, splits);
	}
	/* Means over splits. */
	double fnir[NF][MAXN], fnir_sd[NF][MAXN], cfnir[NF][MAXN], cfpir[NF][MAXN];
	double nmated[MAXN], nnon = 0;
	for (size_t z = 0; z < nsz; z++) {
		double v[100];
		nmated[z] = 0;
		for (long s = 0; s < splits; s++)
			nmated[z] += (double)sr[s].n_mated[z] / splits;
		for (int f = 0; f < NF; f++) {
			for (long s = 0; s < splits; s++)
				v[s] = sr[s].fnir[f][z];
			hkb_mean_std(v, (size_t)splits, &fnir[f][z], &fnir_sd[f][z]);
			double sd;
			for (long s = 0; s < splits; s++)
				v[s] = sr[s].cal_fnir[f][z];
			hkb_mean_std(v, (size_t)splits, &cfnir[f][z], &sd);
			for (long s = 0; s < splits; s++)
				v[s] = sr[s].cal_fpir[f][z];
			hkb_mean_std(v, (size_t)splits, &cfpir[f][z], &sd);
		}
	}
	for (long s = 0; s < splits; s++)
		nnon += (double)sr[s].n_non / splits;
	/* Model: FNIR(N) = 1 - P(mate ranked first and mate score >= t(N)),
	 * t(N) = q^-1(1 - (1 - FPIR)^(1/N)) from the shipped open-set table,
	 * mated scores and ranks as measured at the largest gallery. */
	const double mod_n[] = {1e3, 1e4, 1e5, 1e6};
	enum { NMOD = 4 };
	double model[NF][NMOD], model_thr[NF][NMOD];
	for (int f = 0; f < NF; f++)
		for (int q = 0; q < NMOD; q++) {
			float t;
			if (hk_calib_score_at_fpir(cal, fpirs[f], (uint64_t)mod_n[q], &t)) {
				model[f][q] = model_thr[f][q] = NAN;
				continue;
			}
			double hit = 0, tot = 0;
			for (long s = 0; s < splits; s++)
				for (size_t m = 0; m < sr[s].nmate; m++) {
					hit += sr[s].mate_first[m] && sr[s].mate_score[m] >= t;
					tot++;
				}
			model[f][q] = 1.0 - hit / tot;
			model_thr[f][q] = t;
		}
	double wall = hkb_now() - wall0;

	/* Plot data. */
	char fn[4200];
	snprintf(fn, sizeof fn, "%s.tsv", prefix);
	FILE *pf = fopen(fn, "w");
	if (pf) {
		fprintf(pf, "# N FNIR@1e-2 FNIR@1e-3 calibrated: FNIR@1e-2 FNIR@1e-3 (measured)\n");
		for (size_t z = 0; z < nsz; z++)
			fprintf(pf, "%zu\t%.5f\t%.5f\t%.5f\t%.5f\n", sizes[z], fnir[0][z], fnir[1][z],
			        cfnir[0][z], cfnir[1][z]);
		fprintf(pf, "\n\n# N model FNIR@1e-2 FNIR@1e-3 (calibration model)\n");
		for (int q = 0; q < NMOD; q++)
			fprintf(pf, "%.0f\t%.5f\t%.5f\n", mod_n[q], model[0][q], model[1][q]);
		fclose(pf);
		if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
			char cmd[9000];
			snprintf(cmd, sizeof cmd,
			         "gnuplot -e \"set terminal svg size 800,500; set output '%s.svg';"
			         " set title 'herken on LFW: FNIR against gallery size N (one photo per person)';"
			         " set logscale x; set xlabel 'N (enrolled people)'; set ylabel 'FNIR';"
			         " set grid; set key top left; set yrange [0:1];"
			         " plot '%s' index 0 using 1:2 with linespoints title 'measured, FPIR 1e-2',"
			         " '' index 0 using 1:3 with linespoints title 'measured, FPIR 1e-3',"
			         " '' index 1 using 1:2 with lines dashtype 2 title 'model, FPIR 1e-2',"
			         " '' index 1 using 1:3 with lines dashtype 2 title 'model, FPIR 1e-3'\""
			         " 2>/dev/null",
			         prefix, fn);
			if (system(cmd) != 0)
				fprintf(stderr, "openset: gnuplot failed; data in %s\n", fn);
		}
	}
	const char *formula =
	    "FNIR(N) = 1 - P(mate ranked first and mate score >= t(N)), "
	    "t(N) = q^-1(1 - (1 - FPIR)^(1/N)), q the shipped calibration's open-set rate per (stranger, "
	    "enrolled person); mated scores and "
	    "ranks as measured at the largest gallery (rank errors that grow with N are not "
	    "modelled; q below 6e-6 is the calibration's model: log-linear impostor tail plus "
	    "look-alikes that score like mates)";
	if (json) {
		printf("{\"suite\":\"openset\",\"protocol\":\"LFW, one photo per enrolled person; "
		       "non-mated = people not enrolled; BLUFR trial-1 train people left out\","
		       "\"splits\":%ld,\"people\":%zu,\"strangers\":%zu,\"non_mated_probes\":%.0f,"
		       "\"rows\":[",
		       splits, npeople, nstr, nnon);
		for (size_t z = 0; z < nsz; z++)
			printf("%s{\"n\":%zu,\"mated_probes\":%.0f,\"fnir_fpir_1e-2\":%.4f,"
			       "\"fnir_fpir_1e-2_std\":%.4f,\"fnir_fpir_1e-3\":%.4f,\"fnir_fpir_1e-3_std\":%.4f,"
			       "\"calibrated_1e-2\":{\"fpir\":%.5f,\"fnir\":%.4f},"
			       "\"calibrated_1e-3\":{\"fpir\":%.5f,\"fnir\":%.4f}}",
			       z ? "," : "", sizes[z], nmated[z], fnir[0][z], fnir_sd[0][z], fnir[1][z],
			       fnir_sd[1][z], cfpir[0][z], cfnir[0][z], cfpir[1][z], cfnir[1][z]);
		printf("],\"model\":{\"formula\":\"%s\",\"rows\":[", formula);
		for (int q = 0; q < NMOD; q++)
			printf("%s{\"n\":%.0f,\"threshold_1e-2\":%.4f,\"fnir_1e-2\":%.4f,"
			       "\"threshold_1e-3\":%.4f,\"fnir_1e-3\":%.4f}",
			       q ? "," : "", mod_n[q], model_thr[0][q], model[0][q], model_thr[1][q],
			       model[1][q]);
		printf("]},\"comparisons\":%llu,\"score_s\":%.2f,\"wall_s\":%.2f,\"subject\":\"%s\","
		       "\"files\":\"%s.svg %s.tsv\"}\n",
		       (unsigned long long)comparisons, t_score, wall, o.centre ? "centre" : "largest",
		       prefix, prefix);
	} else {
		hkb_print_header("openset", 7000);
		printf("## Open-set identification on LFW against gallery size\n\n"
		       "%zu people (BLUFR trial-1 train people left out), %zu of them strangers "
		       "(%.0f non-mated probes); gallery = one photo per enrolled person; %ld random "
		       "splits (mean ± std); subject = %s face.\n\n",
		       npeople, nstr, nnon, splits, o.centre ? "centre" : "largest");
		printf("| N | mated probes | FNIR @ FPIR 1e-2 | FNIR @ FPIR 1e-3 | calibrated "
		       "1e-2: FPIR / FNIR | calibrated 1e-3: FPIR / FNIR |\n|---|---|---|---|---|---|\n");
		for (size_t z = 0; z < nsz; z++)
			printf("| %zu | %.0f | %.4f ± %.4f | %.4f ± %.4f | %.4f / %.4f | %.4f / %.4f |\n",
			       sizes[z], nmated[z], fnir[0][z], fnir_sd[0][z], fnir[1][z], fnir_sd[1][z],
			       cfpir[0][z], cfnir[0][z], cfpir[1][z], cfnir[1][z]);
		printf("\n### Extrapolation (a MODEL, not a measurement)\n\n%s\n\n"
		       "| N | t(N) @ 1e-2 | FNIR @ 1e-2 | t(N) @ 1e-3 | FNIR @ 1e-3 |\n"
		       "|---|---|---|---|---|\n", formula);
		for (int q = 0; q < NMOD; q++)
			printf("| %.0e | %.3f | %.3f | %.3f | %.3f |\n", mod_n[q], model_thr[0][q],
			       model[0][q], model_thr[1][q], model[1][q]);
		printf("\n%llu comparisons in %.1f s; wall %.1f s. Plot %s.svg, data %s.tsv\n",
		       (unsigned long long)comparisons, t_score, wall, prefix, prefix);
	}
	for (long s = 0; s < splits; s++) {
		free(sr[s].mate_score);
		free(sr[s].mate_first);
	}
	free(sr);
	free(sc);
	free(pos);
	free(people);
	free(count);
	free(excluded);
	free(first);
	hkb_set_free(&gal);
	hk_calib_destroy(cal);
	hkb_blufr_free(&b);
	return 0;
}
