/* mpi_launch.c - whether an MPI launcher started this process, from its environment, before
 * (and without) initialising MPI: the same binary runs alone and under mpirun, and MPI is
 * initialised only when a launcher is there. Open MPI's mpirun sets OMPI_COMM_WORLD_*; PMIx
 * launchers (srun --mpi=pmix, prterun) PMIX_RANK; PMI launchers (srun --mpi=pmi2, MPICH's
 * mpiexec) PMI_RANK / PMI_SIZE. */
#include <stdlib.h>

#include "score_job.h"

static int env_int(const char *name, int *out) {
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) return 0;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 1 << 30) return 0;
    *out = (int)x;
    return 1;
}

int mpi_launched(int *size, int *rank) {
    int s = 0, r = 0;
    int found = env_int("OMPI_COMM_WORLD_SIZE", &s);
    found |= env_int("OMPI_COMM_WORLD_RANK", &r);
    if (!found && env_int("PMIX_RANK", &r)) {
        found = 1;
        if (!env_int("PMIX_SIZE", &s) && !env_int("SLURM_STEP_NUM_TASKS", &s)) env_int("SLURM_NTASKS", &s);
    }
    if (!found && (env_int("PMI_RANK", &r) | env_int("PMI_SIZE", &s))) found = 1;
    if (size) *size = found ? s : 0;
    if (rank) *rank = found ? r : 0;
    return found;
}
