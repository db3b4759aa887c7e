#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "herken.h"
#include "internal.h"

Test(version, macros_match_runtime)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%d.%d.%d", HK_VERSION_MAJOR, HK_VERSION_MINOR,
	         HK_VERSION_PATCH);
	cr_assert_str_eq(hk_version(), buf);
	cr_assert_str_eq(hk_version(), HK_VERSION_STRING);
	cr_assert_eq(hk_version_number(), HK_VERSION_NUMBER);
}

Test(status, strings_and_primary)
{
	cr_assert_eq(strncmp(hk_status_str(HK_OK), "HK_OK", 5), 0);
	cr_assert_eq(strncmp(hk_status_str(HK_E_FORMAT), "HK_E_FORMAT", 11), 0);
	hk_status ext = -((3 << 8) | 4); /* HK_E_FORMAT with detail 3 */
	cr_assert_eq(HK_STATUS_PRIMARY(ext), HK_E_FORMAT);
	cr_assert_eq(HK_STATUS_DETAIL(ext), 3);
	cr_assert_eq(strncmp(hk_status_str(ext), "HK_E_FORMAT", 11), 0);
	cr_assert_str_eq(hk_status_str(-200), "unknown status");
}

static int log_calls;
static char log_last[256];
static void log_cb(int level, const char *msg, void *user)
{
	(void)level;
	*(int *)user += 1;
	snprintf(log_last, sizeof log_last, "%s", msg);
}

Test(status, last_error_and_log)
{
	hk_set_log(log_cb, &log_calls, HK_LOG_DEBUG);
	hk_status s = hk__err(HK_E_RANGE, "component %d is %s", 7, "NaN");
	cr_assert_eq(s, HK_E_RANGE);
	cr_assert_str_eq(hk_last_error(), "component 7 is NaN");
	cr_assert_eq(log_calls, 1);
	cr_assert(strstr(log_last, "component 7 is NaN") != NULL);
	hk_set_log(NULL, NULL, 0);
	hk__err(HK_E_IO, "x");
	cr_assert_eq(log_calls, 1);
}
