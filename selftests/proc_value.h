/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one reader of the kernel's "name value" files, for the selftests
 * (cowguard_stress) and for selftests/soak.c. Plain C, no harness.
 */
#ifndef COWGUARD_PROC_VALUE_H
#define COWGUARD_PROC_VALUE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The value of name in path: a /proc/vmstat line ("pswpout 123") or a
 * /proc/meminfo one ("MemFree:   123 kB", in kB); -1 where the file or
 * the name is missing.
 */
static inline long proc_value(const char *path, const char *name)
{
	char line[256];
	size_t len = strlen(name);
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) &&
		    (line[len] == ' ' || line[len] == ':')) {
			val = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return val;
}

#endif
