#include "error.h"

#include <stdarg.h>
#include <stdio.h>

aac_status aac_fail(aac_error *err, aac_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void aac_error_clear(aac_error *err) {
    if (err) {
        err->code = AAC_OK;
        err->message[0] = '\0';
    }
}

const char *aac_version(void) { return AAC_VERSION_STRING; }

const char *aac_status_name(aac_status s) {
    switch (s) {
    case AAC_OK: return "ok";
    case AAC_ERR_ARG: return "invalid argument";
    case AAC_ERR_IO: return "i/o error";
    case AAC_ERR_FORMAT: return "malformed file";
    case AAC_ERR_MISSING: return "missing tensor or key";
    case AAC_ERR_SHAPE: return "wrong dtype or shape";
    case AAC_ERR_NOMEM: return "out of memory";
    case AAC_ERR_UNSUPPORTED: return "unsupported";
    case AAC_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
