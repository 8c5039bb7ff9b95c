// SPDX-License-Identifier: Apache-2.0
// A loaded PKCS#11 module. C_Initialize runs once per process per module path: Module::load
// returns the same shared instance for the same path while it is alive. Every C_* call goes through
// Module::call / call_rv, which checks the function pointer, logs at debug level, and turns a
// non-OK CK_RV into an Error naming the function.
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "pkcs11/cryptoki.h"

namespace keyport::p11 {

struct ModuleOptions {
  // Call C_Finalize when the last reference goes away. Some modules crash in C_Finalize at exit;
  // `--no-finalize` turns this off for them.
  bool finalize = true;
  // dlclose() the library afterwards. Off by default: SoftHSM and OpenSSL register exit handlers
  // that must not outlive their code.
  bool unload = false;
  // The module's init string, passed in CK_C_INITIALIZE_ARGS.pReserved (the "LibraryParameters"
  // of PKCS#11 §5.4; p11-kit's x-init-reserved). NSS softoken needs one:
  // "configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=". Empty: none.
  std::string init_args;
};

// Error for a failed C_* call: category from the CK_RV (PIN errors -> kAuth, unsupported
// mechanism -> kUnsupported, others kPkcs11), message "<function> failed".
Error pkcs11_error(CK_RV rv, const char* function);

class Module final {
 public:
  // Loads `path` (dlopen), gets its function list and initialises it with CKF_OS_LOCKING_OK and
  // the options' init string. CKR_CRYPTOKI_ALREADY_INITIALIZED is accepted (someone else in the
  // process owns it; then this Module never finalises). kNotFound if the file is missing; a module
  // that refuses C_Initialize for want of init arguments (CKR_ARGUMENTS_BAD) is kInvalidArgument
  // with a message that says how to give them; kPkcs11 otherwise. The same path loaded again with
  // other init arguments while the first is alive is kInvalidArgument.
  static Result<std::shared_ptr<Module>> load(const std::string& path,
                                              const ModuleOptions& options = {});

  // The module used when none is given: $KEYPORT_PKCS11_MODULE, else SoftHSM2's module.
  static std::string default_path();

  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& path() const { return m_path; }
  const std::string& init_args() const { return m_options.init_args; }
  CK_FUNCTION_LIST* functions() const { return m_functions; }
  // "SoftHSM 2.6" style description from C_GetInfo, cached at load.
  const std::string& description() const { return m_description; }
  const CK_INFO& info() const { return m_info; }
  // Whether this instance's C_Initialize is the one in force (not someone else's in the process).
  bool owns_initialization() const { return m_owns_init; }

  // C_Finalize, then C_Initialize again: the module frees everything it held for this process
  // (SoftHSM 2.6 frees its session objects only here). Every session must be closed first: their
  // handles die, and the module may hand the same numbers to new sessions. The caller guarantees
  // no other thread calls into the module meanwhile. kUnsupported when this instance did not
  // initialise the module; after a failed C_Initialize the module is unusable (kPkcs11).
  Status reinitialize();

  // Calls one C_* function. Returns its CK_RV (CKR_FUNCTION_NOT_SUPPORTED when the pointer is
  // null).
  template <typename Fn, typename... Args>
  CK_RV call_rv(const char* name, Fn CK_FUNCTION_LIST::*member, Args... args) const {
    Fn fn = m_functions->*member;
    if (fn == nullptr) {
      log_call(name, CKR_FUNCTION_NOT_SUPPORTED);
      return CKR_FUNCTION_NOT_SUPPORTED;
    }
    CK_RV rv = fn(args...);
    log_call(name, rv);
    return rv;
  }

  // Same, with non-OK turned into pkcs11_error(rv, name).
  template <typename Fn, typename... Args>
  Status call(const char* name, Fn CK_FUNCTION_LIST::*member, Args... args) const {
    CK_RV rv = call_rv(name, member, args...);
    if (rv != CKR_OK) {
      return tl::unexpected(pkcs11_error(rv, name));
    }
    return {};
  }

 private:
  Module() = default;
  void log_call(const char* name, CK_RV rv) const;
  // C_Initialize with CKF_OS_LOCKING_OK and the init string of m_options.
  CK_RV initialize();

  std::string m_path;
  void* m_handle = nullptr;
  CK_FUNCTION_LIST* m_functions = nullptr;
  CK_INFO m_info{};
  std::string m_description;
  bool m_owns_init = false;
  ModuleOptions m_options;
};

}  // namespace keyport::p11

// KP11_CALL(module, C_WrapKey, args...) / KP11_CALL_RV(...): the function name appears once.
#define KP11_CALL(module, fn, ...) (module).call(#fn, &CK_FUNCTION_LIST::fn, __VA_ARGS__)
#define KP11_CALL_RV(module, fn, ...) (module).call_rv(#fn, &CK_FUNCTION_LIST::fn, __VA_ARGS__)
