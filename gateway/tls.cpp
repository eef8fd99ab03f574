#include "gateway/tls.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <variant>

namespace anvil::gateway {
namespace ssl = asio::ssl;

namespace {

// ALPN wire form: length-prefixed names, in the server's order of preference.
constexpr unsigned char kAlpnH2[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// The server's list first: a client offering h2 gets h2 (when enabled). A
// client offering neither gets no ALPN answer and is served HTTP/1.1.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  const bool h2 = arg != nullptr;
  const unsigned char* prefs = h2 ? kAlpnH2 : kAlpnHttp11;
  const unsigned int prefs_len = h2 ? sizeof kAlpnH2 : sizeof kAlpnHttp11;
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, prefs, prefs_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// OpenSSL's reason for a failed load ("No such file or directory", "bad
// end line", …): Asio's message for its ssl category is only "asio.ssl error".
std::string reason(const boost::system::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return ec.message();
  char buf[256];
  ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
  return buf;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};

bool add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A P-256 key and a 30-day certificate for localhost, 127.0.0.1 and ::1.
Result<std::monostate> use_self_signed(SSL_CTX* ctx) {
  const Error failed = make_error("config", "tls_self_signed", "Cannot make a self-signed TLS certificate.");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) return failed;
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return failed;
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const unsigned char cn[] = "localhost";
  const unsigned char org[] = "Anvil development";
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, org, -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") ||
      !add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(cert.get(), NID_ext_key_usage, "serverAuth"))
    return failed;
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return failed;
  if (SSL_CTX_use_certificate(ctx, cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) return failed;
  return std::monostate{};
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const TlsOptions& opts) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.2 and 1.3 only (HTTP/2 requires 1.2 at least, RFC 9113 §9.2).
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  if (opts.self_signed) {
    if (auto st = use_self_signed(ctx->native_handle()); !st.ok()) return st.error();
  } else {
    if (opts.cert_file.empty() || opts.key_file.empty())
      return make_error("config", "tls_files", "TLS needs both a certificate (--tls-cert) and a key (--tls-key).");
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(opts.cert_file, ec);
    if (ec)
      return make_error("config", "tls_cert",
                        "Cannot load the TLS certificate `" + opts.cert_file + "`: " + reason(ec));
    ctx->use_private_key_file(opts.key_file, ssl::context::pem, ec);
    if (ec) return make_error("config", "tls_key", "Cannot load the TLS key `" + opts.key_file + "`: " + reason(ec));
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      return make_error("config", "tls_key",
                        "The TLS key `" + opts.key_file + "` does not match the certificate `" + opts.cert_file + "`.");
  }
  // The callback's argument only says whether h2 is offered (non-null).
  static int h2_marker = 0;
  SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_alpn, opts.http2 ? &h2_marker : nullptr);
  return ctx;
}

std::string negotiated_alpn(TlsStream& stream) {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(stream.native_handle(), &p, &n);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

}  // namespace anvil::gateway
