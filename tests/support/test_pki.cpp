#include "support/test_pki.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

namespace outboxd::test {
namespace {

template <auto Free>
struct openssl_free {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free<EVP_PKEY_free>>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_free<EVP_PKEY_CTX_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_free<X509_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_free<X509_EXTENSION_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_free<BIO_free>>;

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

pkey_ptr generate_p256_key() {
  pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  require(ctx != nullptr, "EVP_PKEY_CTX_new_from_name");
  require(EVP_PKEY_keygen_init(ctx.get()) == 1, "EVP_PKEY_keygen_init");
  require(EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") == 1, "EVP_PKEY_CTX_set_group_name");
  EVP_PKEY* key = nullptr;
  require(EVP_PKEY_generate(ctx.get(), &key) == 1, "EVP_PKEY_generate");
  return pkey_ptr(key);
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  extension_ptr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  require(extension != nullptr, "X509V3_EXT_conf_nid");
  require(X509_add_ext(cert, extension.get(), -1) == 1, "X509_add_ext");
}

// A CA certificate when `leaf` is null, otherwise the leaf it describes; self-signed when
// issuer_cert is null. The serial is random so two tests' CAs never look like the same one.
x509_ptr make_certificate(EVP_PKEY* key, const char* common_name, const certificate_request* leaf,
                          X509* issuer_cert, EVP_PKEY* issuer_key) {
  x509_ptr cert(X509_new());
  require(cert != nullptr, "X509_new");
  require(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  unsigned char serial_bytes[8];
  require(RAND_bytes(serial_bytes, sizeof serial_bytes) == 1, "RAND_bytes");
  long serial = 0;
  for (const unsigned char byte : serial_bytes) serial = (serial << 8) | byte;
  serial &= 0x7fffffffffffffffL;  // positive
  require(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial == 0 ? 1 : serial) == 1,
          "ASN1_INTEGER_set");
  const long from = leaf ? static_cast<long>(leaf->valid_from.count()) : -3600;
  const long until = leaf ? static_cast<long>(leaf->valid_until.count()) : 24 * 3600;
  require(X509_gmtime_adj(X509_getm_notBefore(cert.get()), from) != nullptr, "notBefore");
  require(X509_gmtime_adj(X509_getm_notAfter(cert.get()), until) != nullptr, "notAfter");
  require(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  require(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                                     0) == 1,
          "X509_NAME_add_entry_by_txt");
  X509* issuer = issuer_cert != nullptr ? issuer_cert : cert.get();
  require(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) == 1,
          "X509_set_issuer_name");
  add_extension(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (leaf == nullptr) {
    add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    if (issuer_cert != nullptr) {
      add_extension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
    }
    add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
    add_extension(cert.get(), issuer, NID_ext_key_usage,
                  leaf->client ? "clientAuth" : "serverAuth");
    if (!leaf->subject_alt_names.empty()) {
      add_extension(cert.get(), issuer, NID_subject_alt_name, leaf->subject_alt_names.c_str());
    }
  }
  require(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string certificate_text(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  require(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  return bio_text(bio.get());
}

std::string key_text(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  require(bio != nullptr &&
              PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  return bio_text(bio.get());
}

}  // namespace

struct test_authority::impl {
  pkey_ptr key;
  x509_ptr cert;
};

test_authority::test_authority(std::string_view name) : impl_(std::make_unique<impl>()) {
  const std::string common_name(name);
  impl_->key = generate_p256_key();
  impl_->cert =
      make_certificate(impl_->key.get(), common_name.c_str(), nullptr, nullptr, impl_->key.get());
}

test_authority::~test_authority() = default;

std::string test_authority::certificate_pem() const { return certificate_text(impl_->cert.get()); }

pem_identity test_authority::issue(const certificate_request& request) const {
  const pkey_ptr key = generate_p256_key();
  const x509_ptr cert = make_certificate(key.get(), request.common_name.c_str(), &request,
                                         impl_->cert.get(), impl_->key.get());
  return {.certificate = certificate_text(cert.get()), .key = key_text(key.get())};
}

pem_identity self_signed(const certificate_request& request) {
  const pkey_ptr key = generate_p256_key();
  const x509_ptr cert =
      make_certificate(key.get(), request.common_name.c_str(), &request, nullptr, key.get());
  return {.certificate = certificate_text(cert.get()), .key = key_text(key.get())};
}

temp_file::temp_file(std::string_view content, std::string_view name) {
  path_ = (std::filesystem::temp_directory_path() / (std::string(name) + "-XXXXXX")).string();
  const int fd = ::mkstemp(path_.data());
  require(fd >= 0, "mkstemp");
  std::size_t written = 0;
  while (written < content.size()) {
    const auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  const bool closed = ::close(fd) == 0;
  if (written != content.size() || !closed) {
    std::filesystem::remove(path_);
    require(false, "write");
  }
}

temp_file::~temp_file() {
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

}  // namespace outboxd::test
