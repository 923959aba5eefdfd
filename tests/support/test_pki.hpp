#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace outboxd::test {

// A certificate and its private key, both PEM.
struct pem_identity {
  std::string certificate;
  std::string key;
};

// What a leaf certificate says. Validity is relative to now, so an expired certificate is one
// whose window ended in the past.
struct certificate_request {
  std::string common_name = "localhost";
  std::string subject_alt_names = "DNS:localhost,IP:127.0.0.1";  // X509v3 syntax
  bool client = false;  // extendedKeyUsage clientAuth (mTLS) instead of serverAuth
  std::chrono::seconds valid_from{-3600};
  std::chrono::seconds valid_until{24 * 3600};
};

// A throwaway certificate authority (P-256, OpenSSL 3 C API, nothing external): what a test needs
// to stand up TLS servers and clients whose trust it controls.
class test_authority {
 public:
  explicit test_authority(std::string_view name = "outboxd test CA");
  ~test_authority();
  test_authority(const test_authority&) = delete;
  test_authority& operator=(const test_authority&) = delete;

  std::string certificate_pem() const;
  pem_identity issue(const certificate_request& request = {}) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// A leaf certificate signed by its own key: trusted by nobody.
pem_identity self_signed(const certificate_request& request = {});

// A file under the temporary directory with `content`, removed with the object (mkstemp: unique
// with tests running in parallel).
class temp_file {
 public:
  explicit temp_file(std::string_view content, std::string_view name = "outboxd-test");
  ~temp_file();
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace outboxd::test
