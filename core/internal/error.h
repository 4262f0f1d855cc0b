/* error.h - filling an aac_error (internal). */
#ifndef AAC_ERROR_H
#define AAC_ERROR_H
#include "aaclip.h"

#if defined(__GNUC__)
#define AAC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AAC_PRINTF(a, b)
#endif

/* Sets err (if not NULL) and returns code, so callers can `return aac_fail(...)`. */
aac_status aac_fail(aac_error *err, aac_status code, const char *fmt, ...) AAC_PRINTF(3, 4);
/* Clears err to AAC_OK. */
void aac_error_clear(aac_error *err);
#endif
