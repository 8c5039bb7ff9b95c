// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/module.h"

#include <dlfcn.h>
#include <openssl/err.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/log.h"
#include "core/ossl.h"
#include "pkcs11/names.h"
#include "pkcs11/uri.h"

namespace keyport::p11 {
namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, std::weak_ptr<Module>>& registry() {
  static std::map<std::string, std::weak_ptr<Module>> r;
  return r;
}

// C_Initialize answered CKR_ARGUMENTS_BAD: the module wants init arguments (or other ones).
Error init_args_error(const std::string& path, const std::string& given) {
  const std::string file = std::filesystem::path(path).filename().string();
  std::string msg =
      given.empty()
          ? "the PKCS#11 module " + path +
                " refused C_Initialize without init arguments (CKR_ARGUMENTS_BAD): give them with "
                "--module-init-args or KEYPORT_PKCS11_INIT_ARGS, or register the module with "
                "p11-kit with an x-init-reserved: line and give its name to --module"
          : "the PKCS#11 module " + path +
                " refused C_Initialize with the init arguments given (CKR_ARGUMENTS_BAD)";
  if (file.find("softokn") != std::string::npos) {
    msg +=
        "; NSS softoken needs configdir='sql:DIR' certPrefix='' keyPrefix='' "
        "secmod='secmod.db' flags= (DIR: an NSS database made with certutil -N -d sql:DIR)";
  }
  return Error(ErrorCode::kInvalidArgument, msg, CKR_ARGUMENTS_BAD, "C_Initialize");
}

}  // namespace

Error pkcs11_error(CK_RV rv, const char* function) {
  ErrorCode code = ErrorCode::kPkcs11;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
      code = ErrorCode::kAuth;
      break;
    case CKR_MECHANISM_INVALID:
    case CKR_FUNCTION_NOT_SUPPORTED:
      code = ErrorCode::kUnsupported;
      break;
    default:
      break;
  }
  return Error(code, std::string(function) + " failed", rv, function);
}

std::string Module::default_path() {
  const char* env = std::getenv("KEYPORT_PKCS11_MODULE");
  if (env != nullptr && *env != '\0')
    return env;
  return KEYPORT_DEFAULT_MODULE;
}

Result<std::shared_ptr<Module>> Module::load(const std::string& path,
                                             const ModuleOptions& options) {
  install_rv_namer();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_error(
        ErrorCode::kNotFound,
        "PKCS#11 module " + path + " not found (give --module PATH or set KEYPORT_PKCS11_MODULE" +
            (path == KEYPORT_DEFAULT_MODULE ? "; for SoftHSM2: apt-get install softhsm2)" : ")"));
  }
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec)
    key = path;

  std::lock_guard<std::mutex> lock(registry_mutex());
  if (auto existing = registry()[key].lock()) {
    if (existing->init_args() != options.init_args) {
      return make_error(ErrorCode::kInvalidArgument,
                        "PKCS#11 module " + path +
                            " is already loaded in this process with other init arguments");
    }
    return existing;
  }

  std::shared_ptr<Module> m(new Module());
  m->m_path = path;
  m->m_options = options;
  m->m_handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (m->m_handle == nullptr) {
    const char* err = ::dlerror();
    return make_error(ErrorCode::kPkcs11,
                      "cannot load PKCS#11 module " + path + ": " + (err ? err : "?"));
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(m->m_handle, "C_GetFunctionList"));
  if (get_list == nullptr) {
    return make_error(ErrorCode::kPkcs11, path + " is not a PKCS#11 module (no C_GetFunctionList)");
  }
  CK_RV rv = get_list(&m->m_functions);
  if (rv != CKR_OK || m->m_functions == nullptr) {
    return tl::unexpected(pkcs11_error(rv, "C_GetFunctionList"));
  }
  rv = m->initialize();
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    log::debug("PKCS#11 module " + path + " was already initialised in this process");
  } else if (rv == CKR_ARGUMENTS_BAD) {
    return tl::unexpected(init_args_error(path, options.init_args));
  } else if (rv != CKR_OK) {
    return tl::unexpected(pkcs11_error(rv, "C_Initialize").with_context("initialising " + path));
  } else {
    m->m_owns_init = true;
  }
  rv = m->call_rv("C_GetInfo", &CK_FUNCTION_LIST::C_GetInfo, &m->m_info);
  if (rv == CKR_OK) {
    m->m_description =
        trim_padded(m->m_info.manufacturerID, sizeof m->m_info.manufacturerID) + " " +
        trim_padded(m->m_info.libraryDescription, sizeof m->m_info.libraryDescription) + " " +
        std::to_string(m->m_info.libraryVersion.major) + "." +
        std::to_string(m->m_info.libraryVersion.minor);
  } else {
    m->m_description = path;
  }
  registry()[key] = m;
  return m;
}

Status Module::reinitialize() {
  if (!m_owns_init) {
    return make_error(
        ErrorCode::kUnsupported,
        "PKCS#11 module " + m_path + " was initialised by someone else in this process");
  }
  CK_RV rv = call_rv("C_Finalize", &CK_FUNCTION_LIST::C_Finalize, static_cast<void*>(nullptr));
  if (rv != CKR_OK) {
    return tl::unexpected(pkcs11_error(rv, "C_Finalize").with_context("re-initialising " + m_path));
  }
  rv = initialize();
  if (rv != CKR_OK) {
    m_owns_init = false;
    return tl::unexpected(
        pkcs11_error(rv, "C_Initialize").with_context("re-initialising " + m_path));
  }
  return {};
}

CK_RV Module::initialize() {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  // The module reads the string during C_Initialize (NSS copies what it needs).
  std::string init = m_options.init_args;
  args.pReserved = init.empty() ? nullptr : static_cast<void*>(init.data());
  return call_rv("C_Initialize", &CK_FUNCTION_LIST::C_Initialize, static_cast<void*>(&args));
}

Module::~Module() {
  if (m_functions != nullptr && m_owns_init && m_options.finalize) {
    CK_RV rv = m_functions->C_Finalize ? m_functions->C_Finalize(nullptr) : CKR_OK;
    if (rv != CKR_OK) {
      log::warn("C_Finalize of " + m_path + " returned " + std::string(rv_name(rv)));
    }
  }
  if (m_handle != nullptr && m_options.unload) {
    ::dlclose(m_handle);
  }
}

void Module::log_call(const char* name, CK_RV rv) const {
  // A module that runs OpenSSL in this process (SoftHSM does) may leave errors on the calling
  // thread's OpenSSL queue: SoftHSM 2.6.1's C_Initialize leaves "DSO support routines::could not
  // load the shared library" from trying engines that are not installed. They are the module's,
  // and would otherwise show up in the message of keyport's next, unrelated OpenSSL failure
  // (ossl::drain_errors joins the whole queue). Found by the fuzz replays' queue check.
  const bool debug = log::enabled(log::Level::kDebug);
  if (ERR_peek_error() != 0) {
    std::string left = ossl::drain_errors();
    if (debug)
      log::debug(std::string(name) + " left OpenSSL errors (discarded): " + left);
  }
  if (!debug)
    return;
  std::string_view n = rv_name(rv);
  log::debug(std::string(name) + " -> " + (n.empty() ? std::to_string(rv) : std::string(n)));
}

}  // namespace keyport::p11
