// j2k_fixture.cpp - test-only tool: `aaclip-j2k-fixture IN OUT` writes IN (an uncompressed DICOM
// image) as JPEG 2000 lossless (GDCM's encoder, the one ITK is built with), so that the JPEG
// 2000 tests run in a plain clone without shipping compressed scanner data.
#include <gdcmImageChangeTransferSyntax.h>
#include <gdcmImageReader.h>
#include <gdcmImageWriter.h>

#include <cstdio>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: aaclip-j2k-fixture IN.dcm OUT.dcm\n");
        return 2;
    }
    gdcm::ImageReader r;
    r.SetFileName(argv[1]);
    if (!r.Read()) {
        fprintf(stderr, "%s: GDCM cannot read it\n", argv[1]);
        return 1;
    }
    gdcm::ImageChangeTransferSyntax change;
    change.SetTransferSyntax(gdcm::TransferSyntax::JPEG2000Lossless);
    change.SetInput(r.GetImage());
    if (!change.Change()) {
        fprintf(stderr, "%s: cannot encode as JPEG 2000\n", argv[1]);
        return 1;
    }
    gdcm::ImageWriter w;
    w.SetFileName(argv[2]);
    w.SetFile(r.GetFile());
    w.SetImage(change.GetOutput());
    if (!w.Write()) {
        fprintf(stderr, "%s: cannot write\n", argv[2]);
        return 1;
    }
    return 0;
}
