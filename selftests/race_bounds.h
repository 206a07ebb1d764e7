/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The bounds of the race programs, for the programs themselves (through
 * cowguard_test.h) and for selftests/soak.c, which sets them: one place
 * for RACE_MAX_SECONDS. Plain C, no harness.
 */
#ifndef COWGUARD_RACE_BOUNDS_H
#define COWGUARD_RACE_BOUNDS_H

#include <stdlib.h>
#include <time.h>

/*
 * The bounds of a race: each context runs up to ROUNDS rounds or SECONDS
 * seconds over its region, the constants of its program. A run that wants
 * more (scripts/soak through selftests/soak.c) sets them in the
 * environment:
 *
 *   COWGUARD_RACE_ROUNDS   rounds per context
 *   COWGUARD_RACE_SECONDS  seconds per context, at most RACE_MAX_SECONDS
 *                          (the harness timeouts are sized for it): the
 *                          slowest context of a DEBUG=1 kernel under the
 *                          soak's pressure, soft_dirty_race.pageout at
 *                          13.7 rounds a second, needs about 730 s for
 *                          10^4 rounds (Documentation/soak.rst)
 *   COWGUARD_RACE_DEADLINE the CLOCK_MONOTONIC second no context runs
 *                          beyond (race_seconds())
 *   COWGUARD_RACE_PAGES    pages of the region the context works on
 *
 * Unset or unusable values leave the program's own.
 */
#define RACE_MAX_SECONDS	900

static inline unsigned long race_bound(const char *name, unsigned long def,
				       unsigned long max)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return def;
	v = strtoul(s, &end, 10);
	if (*end || v == 0 || v > max)
		return def;
	return v;
}

/*
 * A context's seconds: COWGUARD_RACE_SECONDS (or def), and never beyond
 * COWGUARD_RACE_DEADLINE, a CLOCK_MONOTONIC second at which the run that
 * set it (make soak) ends, whatever context is running then.
 */
static inline unsigned long race_seconds(unsigned long def)
{
	unsigned long s = race_bound("COWGUARD_RACE_SECONDS", def,
				     RACE_MAX_SECONDS);
	const char *d = getenv("COWGUARD_RACE_DEADLINE");
	struct timespec now;
	long left;

	if (!d || !*d)
		return s;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = strtol(d, NULL, 10) - now.tv_sec;
	if (left < 1)
		left = 1;
	return (unsigned long)left < s ? (unsigned long)left : s;
}

#endif /* COWGUARD_RACE_BOUNDS_H */
