// SPDX-License-Identifier: Apache-2.0
// A SoftHSM2 token folder for this test process only: created on first use under the process's
// scratch folder with two tokens, "onprem" and "vault", SOFTHSM2_CONF pointed at it before the
// module loads (SoftHSM reads it in C_Initialize), never the system folder.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/secret.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"

namespace keyport::test {

inline constexpr const char* kOnpremToken = "onprem";
inline constexpr const char* kOnpremPin = "2222";
inline constexpr const char* kVaultToken = "vault";
inline constexpr const char* kVaultPin = "4444";

class SoftHsm {
 public:
  // The process-wide instance (initialises the folder and loads the module on first call).
  static SoftHsm& get();

  const std::filesystem::path& dir() const { return m_dir; }
  const std::shared_ptr<p11::Module>& module() const { return m_module; }
  p11::SlotInfo slot(const std::string& label) const;
  // A read-write session on the token, logged in as user.
  p11::Session login(const std::string& label) const;

 private:
  SoftHsm();
  std::filesystem::path m_dir;
  std::shared_ptr<p11::Module> m_module;
};

// Number of session (CKA_TOKEN=FALSE) objects of the given class visible to `session`.
std::size_t count_session_objects(const p11::Session& session, CK_OBJECT_CLASS cls);

}  // namespace keyport::test
