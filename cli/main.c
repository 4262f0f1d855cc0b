/* main.c - the aaclip command: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "aaclip_backend.h"
#include "cli.h"
#include "cmd_ingest.h"
#include "cmd_sample.h"
#include "cmd_train.h"

static void usage(FILE *f) {
    fprintf(f,
            "aaclip %s - AA-CLIP anomaly detection for medical images\n"
            "\n"
            "usage: aaclip <command> [options]\n"
            "\n"
            "commands:\n"
            "  score   score study folders, DICOM files or volumes: anomaly maps, scores, DICOM\n"
            "          SEG / Parametric Map / SR, NIfTI/NRRD, a 3D Slicer scene, a summary\n"
            "          (also under mpirun, or split with --shard K/N over job-array tasks)\n"
            "  summary merge  the shard summaries of a job array into one summary\n"
            "  serve   a DICOM node next to a PACS: studies in by C-STORE, scored when complete,\n"
            "          SEG / Parametric Map / SR sent back by C-STORE\n"
            "  pull    studies from a PACS into a folder (C-FIND, then C-GET or C-MOVE)\n"
            "  push    send a score output folder's DICOM objects to a PACS (C-STORE, once)\n"
            "  dump    run the engine on tensors from a safetensors file and write every\n"
            "          intermediate result (checks against a reference implementation)\n"
            "  bench   time the adapted ViT inference on random weights against the best matrix\n"
            "          products of each compute backend on the same shapes\n"
            "  plugins list the compute backends (built-in and plugins), their kernels here, and\n"
            "          why a plugin was refused\n"
            "  convert DICOM series / NIfTI volumes to NIfTI (same values and affine as dcm2niix)\n"
            "  info    list the image series in files and folders (text or --json)\n"
            "  train   train the AA-CLIP adapters (both stages) on a JSON-lines dataset\n"
            "  eval    pixel and image AUROC / AP of a model bundle on a JSON-lines dataset\n"
            "  make-phantoms  synthetic CT-like slices with lesion masks + data.jsonl (demo/test data)\n"
            "  random-model   a model bundle with a random CLIP-shaped backbone (demo/tests)\n"
            "  make-sample-study  write the synthetic CT study with planted lesions\n"
            "          (testdata/sample-study)\n"
            "  model   import published weights (Hugging Face, OpenAI .pt, AA-CLIP checkpoints)\n"
            "          into a model bundle; show a bundle (model import | model info)\n"
            "\n"
            "Run 'aaclip <command> --help' for the options of a command.\n",
            aac_version());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("aaclip %s\n", aac_version());
        return 0;
    }
    /* Commands that compute: make sure OpenBLAS runs kernels that fit this CPU (this may
     * restart the program once, with OPENBLAS_CORETYPE set) and say what was done. */
    static const char *const k_compute[] = {"score", "dump", "bench", "train", "eval", "serve"};
    for (size_t i = 0; i < sizeof k_compute / sizeof k_compute[0]; i++)
        if (!strcmp(cmd, k_compute[i])) {
            char note[512];
            aac_blas_kernels_fix(argv, note, sizeof note);
            if (note[0]) fprintf(stderr, "aaclip: %s\n", note);
            break;
        }
    if (!strcmp(cmd, "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "pull")) return cmd_pull(argc - 1, argv + 1);
    if (!strcmp(cmd, "push")) return cmd_push(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary")) return cmd_summary(argc - 1, argv + 1);
    if (!strcmp(cmd, "plugins")) return cmd_plugins(argc - 1, argv + 1);
    if (!strcmp(cmd, "dump")) return cmd_dump(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "model")) return cmd_model(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "make-phantoms")) return cmd_make_phantoms(argc - 1, argv + 1);
    if (!strcmp(cmd, "random-model")) return cmd_random_model(argc - 1, argv + 1);
    if (!strcmp(cmd, "make-sample-study")) return cmd_make_sample_study(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    fprintf(stderr, "aaclip: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
