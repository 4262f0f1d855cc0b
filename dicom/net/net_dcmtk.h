// net_dcmtk.h - DCMTK pieces the acceptor (scp.cpp) and the client (scu.cpp) share (internal,
// C++ only).
#ifndef AAC_NET_DCMTK_H
#define AAC_NET_DCMTK_H

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dcmtrans.h>

#include <string>

#include "net_internal.h"

// A TLS layer for our role from t (key, cert, optional CA); nullptr with err set when the files
// cannot be used. The caller owns it.
DcmTransportLayer *net_tls_layer(const aac_net_tls *t, T_ASC_NetworkRole role, aac_error *err);
// TCP_NODELAY on an association's socket (scp.cpp).
extern "C" void net_nodelay(T_ASC_Association *assoc);
// 1 when t asks for TLS.
inline bool net_tls_wanted(const aac_net_tls *t) { return t && (t->key || t->cert || t->ca); }
// An AE title or other DICOM string without its padding.
std::string net_trim(const char *s);

#endif
