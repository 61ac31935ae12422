/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcunits.h: the verification of a block a power cut may have torn, shared
 * by the power-cut workloads (pcwrite.c, pcsnap.c).
 *
 * A 4 KiB block of the device is one aligned piece of the host disk only
 * when the image's clusters are 4 KiB or more.  With smaller clusters a cut
 * may keep some of a non-durable write's sectors and lose the others, so a
 * block is checked unit by unit (a unit: the cluster size, which no cut
 * tears), each unit against the contents allowed in it.
 */
#ifndef PCUNITS_H
#define PCUNITS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Write into @exp the record of value @v for the block @ctx describes. */
typedef void (*pc_fill_fn)(const void *ctx, uint64_t v, uint64_t *exp);

/**
 * pc_units_ok() - can each unit of a block hold a content allowed in it?
 * @w: the block read back (@words 64-bit words)
 * @words: words per block
 * @u: units per block
 * @want: per unit, the value expected there (0: zeros)
 * @zok: zeros are allowed in every unit (a discard or zero-out hit it)
 * @later: values of later writes to the block, any of which may have landed
 * @nlater: entries in @later
 * @fill: makes the record of a value for this block
 * @ctx: passed to @fill
 * @exp: scratch space of @words words
 * @got: per unit, what it holds (UINT64_MAX: nothing allowed)
 *
 * Return: true when every unit holds an allowed content.
 */
static inline bool pc_units_ok(const uint64_t *w, uint32_t words, uint32_t u,
			       const uint64_t *want, bool zok, const uint64_t *later,
			       uint32_t nlater, pc_fill_fn fill, const void *ctx,
			       uint64_t *exp, uint64_t *got)
{
	uint32_t uw = words / u, k, j, left = u, i;

	for (k = 0; k < u; k++) {
		got[k] = UINT64_MAX;
		for (j = 0; j < uw && !w[k * uw + j]; j++)
			;
		if (j == uw && (!want[k] || zok)) {
			got[k] = 0;
			left--;
		}
	}
	/* What was expected, then the later writes. */
	for (k = 0; k < u && left; k++) {
		uint64_t v = want[k];

		if (!v || got[k] != UINT64_MAX)
			continue;
		fill(ctx, v, exp);
		for (j = k; j < u; j++)
			if (got[j] == UINT64_MAX && want[j] == v &&
			    !memcmp(exp + j * uw, w + j * uw, uw * 8)) {
				got[j] = v;
				left--;
			}
	}
	for (i = 0; i < nlater && left; i++) {
		fill(ctx, later[i], exp);
		for (k = 0; k < u; k++)
			if (got[k] == UINT64_MAX && !memcmp(exp + k * uw, w + k * uw, uw * 8)) {
				got[k] = later[i];
				left--;
			}
	}
	return !left;
}

#endif
