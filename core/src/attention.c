/* attention.c - multi-head self-attention by blocks of query rows.
 *
 * For a block of query rows of one head: S = scale q_b k^T [rows x n], exp(S - row max),
 * out_b = exp(..) v, each output row divided by its row's sum. The scores exist only as that
 * tile (up to 512 rows, a few MiB: the two products with k = head width run faster on tall
 * blocks, which outweighs the tile's falling out of L2 for the AVX-512 softmax between them),
 * never as a per-head n x n matrix in memory. Every row sees all n keys at once, so the softmax
 * is the exact one (no running rescaling as in flash attention) and each output row is computed
 * by the same calls whatever the block size or the thread count. The division by the sum is
 * applied to the rows x hw output rather than the rows x n tile: one pass over the tile fewer.
 * Tasks (head, block) are independent and run in parallel when the backend allows concurrent
 * products. */
#include <omp.h>

#include "kernels.h"

enum { MAX_BLOCK_ROWS = 512 };

/* Rows of a tile of about `floats` floats for n keys: whole 16-row panels, 16 to
 * MAX_BLOCK_ROWS, no more than n rounded up to a panel. */
static int block_rows(int n, int floats) {
    int rows = (floats / (n > 0 ? n : 1)) & ~15;
    if (rows < 16) rows = 16;
    if (rows > MAX_BLOCK_ROWS) rows = MAX_BLOCK_ROWS;
    const int whole = (n + 15) & ~15;
    return rows < whole ? rows : whole;
}

/* about 768 Ki floats (3 MiB) per tile; measured on ViT-L at 518 (n = 1370, 2 threads):
 * 128-row blocks 0.66 s of attention per slice, 512 rows 0.57 s, one block per head 0.62 s */
int attention_block_rows(int n) { return block_rows(n, 786432); }

/* about 192 Ki floats (768 KiB) per tile, never more rows than the forward's: the backward
 * makes five products and two passes per block, and the forward's larger blocks made a
 * stage-2 step 3 % slower */
int attention_backward_block_rows(int n) { return block_rows(n, 196608); }

void attention_forward(aac_compute *cx, const float *q, const float *k, const float *v, int ld,
                       float *out, int ldo, int n, int heads, int hw, int causal, float scale,
                       float *tiles, int slots) {
    const int rows = attention_block_rows(n), blocks = (n + rows - 1) / rows;
    const int tasks = heads * blocks;
    int nt = compute_concurrent(cx) ? omp_get_max_threads() : 1;
    nt = nt < slots ? nt : slots;
    nt = nt < tasks ? nt : tasks;
    /* causal rows need only the keys up to themselves: the block's last row bounds them */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt > 0 ? nt : 1)
    for (int t = 0; t < tasks; t++) {
        const int hd = t / blocks, r0 = (t % blocks) * rows;
        const int m = n - r0 < rows ? n - r0 : rows;
        const int keys = causal ? r0 + m : n;
        float *s = tiles + (size_t)omp_get_thread_num() * rows * n, inv[MAX_BLOCK_ROWS];
        const size_t off = (size_t)hd * hw;
        float *o = out + (size_t)r0 * ldo + off;
        gemm_nt(cx, m, keys, hw, scale, q + (size_t)r0 * ld + off, ld, k + off, ld, 0.0f, s, keys);
        softmax_rows_exp(s, m, keys, keys, causal ? r0 : -1, inv);
        gemm_nn(cx, m, hw, keys, 1.0f, s, keys, v + off, ld, 0.0f, o, ldo);
        for (int i = 0; i < m; i++)
            for (int d = 0; d < hw; d++) o[(size_t)i * ldo + d] *= inv[i];
    }
}
