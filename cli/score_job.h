/* score_job.h - `aaclip score` as parsed, shared by the single-process run (cmd_score.c) and
 * the MPI run (score_mpi.c, built when MPI is found), and how a process learns that an MPI
 * launcher started it (mpi_launch.c). */
#ifndef AAC_SCORE_JOB_H
#define AAC_SCORE_JOB_H
#include "cli.h"

typedef struct score_job {
    model_opts mo;
    aac_score_params sp;       /* options; callbacks are set by the run */
    const char **paths;
    int n_paths;
    const char *out_dir;
    cli_logger log;
    double rank_timeout;       /* MPI: seconds without a sign of life before a rank counts as dead */
    const char *model_files[2]; /* --clip, --adapters: what identifies the model for the anchor cache */
} score_job;

/* Opens model, tokenizer and scorer for the job (the model's thread count as set in
 * job->mo.params); prints what went wrong and returns -1. */
int score_job_open(score_job *job, aac_model **m, aac_tokenizer **tok, aac_scorer **sc);
/* The single-process run: aac_score_paths with a progress bar. Exit status as `aaclip score`. */
int score_single(score_job *job);
/* SIGINT / SIGTERM ask the run to stop after the current slice batch. */
void score_catch_signals(void);
int score_stop_requested(void);

/* An MPI launcher's environment (Open MPI's mpirun, PMIx or PMI launchers such as srun or
 * MPICH's mpiexec): 1 and the world size / rank when they can be read (0 when unknown), else 0. */
int mpi_launched(int *size, int *rank);
/* `aaclip score` under an MPI launcher with more than one process (score_mpi.c). */
int score_mpi(score_job *job);
#endif
