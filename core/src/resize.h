/* resize.h - image and position-embedding resampling (internal).
 * aac_resize_u8 (public) is Pillow's BICUBIC on 8-bit data, bit-exact. */
#ifndef AAC_RESIZE_H
#define AAC_RESIZE_H
#include "aaclip.h"

/* PyTorch F.interpolate(mode='bicubic', antialias=True, align_corners=False) on float planes:
 * src [planes][sh][sw] -> dst [planes][dh][dw]. Used for the position embedding resize. */
aac_status resize_bicubic_aa_f32(const float *src, int planes, int sh, int sw,
                                 float *dst, int dh, int dw, aac_error *err);
/* Position embedding pe [(g0*g0+1) x width] (class row first) -> out [(g*g+1) x width], the
 * g0 x g0 grid resized with resize_bicubic_aa_f32, class row unchanged; copies when g == g0. */
aac_status resize_pos_embed(const float *pe, int width, int g0, int g, float *out, aac_error *err);
#endif
