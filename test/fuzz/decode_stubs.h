/*
 * decode_stubs.h — between the libFuzzer harness (decode_fuzz.c) and the
 * server stand-ins of decode_stubs.c.
 */
#ifndef DECODE_STUBS_H
#define DECODE_STUBS_H

#include <setjmp.h>

/* the last ERROR raised through ereport */
typedef struct FuzzError
{
	bool		active;
	int			sqlerrcode;
	const char *filename;
	int			lineno;
	char		message[1024];
	char		detail[1024];
	char		hint[1024];
} FuzzError;

extern FuzzError fuzz_error;
extern sigjmp_buf *fuzz_error_jmp;	/* where errfinish() jumps on ERROR */

extern void fuzz_mem_reset(void);	/* frees every chunk palloc'd so far */
extern size_t fuzz_mem_live(void);
extern size_t fuzz_mem_peak;

#endif
