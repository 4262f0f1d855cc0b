/* cmd_ingest.h - the study ingestion subcommands (they need libaaclip_dicom). */
#ifndef AAC_CMD_INGEST_H
#define AAC_CMD_INGEST_H

/* `aaclip convert INPUT... -o OUT`: DICOM series / volume files to NIfTI. argv[0] = "convert".
 * Returns 0 when every series was written, 1 when any failed or none was found, 2 on usage. */
int cmd_convert(int argc, char **argv);
/* `aaclip info INPUT... [--json]`: the series found, as text or JSON. */
int cmd_info(int argc, char **argv);

#endif
