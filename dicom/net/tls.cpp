// tls.cpp - DICOM over TLS (DCMTK dcmtls with OpenSSL): the BCP 195 profile, our key and
// certificate, and the peer verified against a CA when one is given.
#include "net_dcmtk.h"

#include <dcmtk/dcmtls/tlslayer.h>
#include <sys/stat.h>

extern "C" {
#include "error.h"
}

std::string net_trim(const char *s) {
    std::string v(s ? s : "");
    size_t a = v.find_first_not_of(' '), b = v.find_last_not_of(' ');
    return a == std::string::npos ? std::string() : v.substr(a, b - a + 1);
}

DcmTransportLayer *net_tls_layer(const aac_net_tls *t, T_ASC_NetworkRole role, aac_error *err) {
    if (!t->key || !t->cert) {
        aac_fail(err, AAC_ERR_ARG, "TLS needs both a private key and a certificate (--tls-key, --tls-cert)");
        return nullptr;
    }
    DcmTLSTransportLayer *tls = new DcmTLSTransportLayer(role, nullptr, OFTrue);
    OFCondition c = tls->setTLSProfile(TSP_Profile_BCP195);
    if (c.good()) c = tls->activateCipherSuites();
    if (c.bad()) {
        aac_fail(err, AAC_ERR_UNSUPPORTED, "TLS: cannot set up the BCP 195 profile: %s", c.text());
        delete tls;
        return nullptr;
    }
    if (tls->setPrivateKeyFile(t->key, DCF_Filetype_PEM).bad()) {
        aac_fail(err, AAC_ERR_IO, "%s: cannot read the private key (PEM)", t->key);
        delete tls;
        return nullptr;
    }
    if (tls->setCertificateFile(t->cert, DCF_Filetype_PEM).bad()) {
        aac_fail(err, AAC_ERR_IO, "%s: cannot read the certificate (PEM)", t->cert);
        delete tls;
        return nullptr;
    }
    if (!tls->checkPrivateKeyMatchesCertificate()) {
        aac_fail(err, AAC_ERR_ARG, "%s does not match the certificate %s", t->key, t->cert);
        delete tls;
        return nullptr;
    }
    if (t->ca) {
        struct stat st;
        const bool dir = stat(t->ca, &st) == 0 && S_ISDIR(st.st_mode);
        c = dir ? tls->addTrustedCertificateDir(t->ca, DCF_Filetype_PEM)
                : tls->addTrustedCertificateFile(t->ca, DCF_Filetype_PEM);
        if (c.bad()) {
            aac_fail(err, AAC_ERR_IO, "%s: cannot read the CA certificate(s) (PEM)", t->ca);
            delete tls;
            return nullptr;
        }
        tls->setCertificateVerification(DCV_requireCertificate);
    } else {
        tls->setCertificateVerification(DCV_ignoreCertificate);
    }
    return tls;
}
