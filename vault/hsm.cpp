// SPDX-License-Identifier: Apache-2.0
#include "vault/hsm.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "core/file_io.h"
#include "core/log.h"
#include "core/random.h"
#include "pkcs11/session.h"
#include "pkcs11/uri.h"

namespace keyport::vault {
namespace fs = std::filesystem;
namespace {

// Which SoftHSM configuration this process's vault module was initialised with.
struct ProcessModuleState {
  std::mutex mutex;
  std::weak_ptr<p11::Module> module;
  std::string conf;  // canonical path of the softhsm2.conf it was initialised with
};

ProcessModuleState& process_state() {
  static ProcessModuleState state;
  return state;
}

// A fresh PIN: 32 lowercase hex characters from 16 random bytes, straight into SecretBytes.
SecretBytes new_pin() {
  static constexpr char kHex[] = "0123456789abcdef";
  SecretBytes raw = random_secret(16);
  SecretBytes pin(32);
  auto in = raw.reveal(SecretAccess::unsafe());
  auto out = pin.reveal_mut(SecretAccess::unsafe());
  for (std::size_t i = 0; i < in.size(); ++i) {
    out[2 * i] = static_cast<std::uint8_t>(kHex[in[i] >> 4]);
    out[2 * i + 1] = static_cast<std::uint8_t>(kHex[in[i] & 0x0f]);
  }
  return pin;
}

Result<SecretBytes> read_or_create_pin(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    SecretBytes pin = new_pin();
    WriteOptions o;
    o.mode = 0600;
    KEYPORT_TRY(write_file_atomic(path, pin.reveal(SecretAccess::unsafe()), o));
  }
  return read_secret_file(path, 4096);
}

std::string conf_text(const fs::path& tokens) {
  return "# SoftHSM2 configuration of one keyport vault (simulation: the PINs are in this "
         "folder).\n"
         "directories.tokendir = " +
         tokens.string() +
         "\n"
         "objectstore.backend = file\n"
         "log.level = ERROR\n"
         "slots.removable = false\n"
         "slots.mechanisms = ALL\n"
         "library.reset_on_fork = false\n";
}

Result<std::shared_ptr<p11::Module>> load_for_conf(const std::string& module_path,
                                                   const std::string& conf) {
  ProcessModuleState& st = process_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  if (auto live = st.module.lock()) {
    if (st.conf == conf) {
      return live;
    }
    return make_error(ErrorCode::kUnsupported,
                      "the SoftHSM module is already initialised in this process for the vault "
                      "token folder " +
                          st.conf +
                          "; SoftHSM reads SOFTHSM2_CONF only once, in C_Initialize, so one "
                          "process serves one own-folder vault (use attached-token mode to share "
                          "a module)");
  }
  if (void* h = ::dlopen(module_path.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
    ::dlclose(h);
    if (st.conf != conf) {
      return make_error(
          ErrorCode::kUnsupported,
          "the PKCS#11 module " + module_path +
              " is already loaded in this process by another component; SoftHSM reads "
              "SOFTHSM2_CONF only once, in C_Initialize, so the vault cannot point it at its own "
              "token folder: open the vault in a process of its own, or use attached-token mode "
              "(VaultOptions::module) with the module already loaded");
    }
  }
  const char* old = std::getenv("SOFTHSM2_CONF");
  std::string previous = old != nullptr ? old : "";
  bool had_previous = old != nullptr;
  ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  auto restore = [&] {
    if (had_previous) {
      ::setenv("SOFTHSM2_CONF", previous.c_str(), 1);
    } else {
      ::unsetenv("SOFTHSM2_CONF");
    }
  };
  auto module = p11::Module::load(module_path);
  if (!module) {
    restore();
    return tl::unexpected(module.error());
  }
  if (module->use_count() > 1) {
    // Someone else in the process holds an initialised instance (with their configuration).
    restore();
    return make_error(ErrorCode::kUnsupported,
                      "the PKCS#11 module " + module_path +
                          " is already initialised in this process by another component; use "
                          "attached-token mode (VaultOptions::module)");
  }
  st.module = *module;
  st.conf = conf;
  return std::move(*module);
}

Result<std::optional<p11::SlotInfo>> find_slot_by_label(const p11::Module& m,
                                                        const std::string& label) {
  KEYPORT_ASSIGN_OR_RETURN(auto slots, p11::list_slots(m, true));
  for (auto& s : slots) {
    if (s.token && s.token->initialized() && s.token->label == label) {
      return std::optional<p11::SlotInfo>(std::move(s));
    }
  }
  return std::optional<p11::SlotInfo>();
}

Status init_token(const p11::Module& m, const SecretBytes& so_pin) {
  KEYPORT_ASSIGN_OR_RETURN(auto slots, p11::list_slots(m, true));
  const p11::SlotInfo* free_slot = nullptr;
  for (const auto& s : slots) {
    if (s.token && !s.token->initialized()) {
      free_slot = &s;
      break;
    }
  }
  if (free_slot == nullptr) {
    return make_error(ErrorCode::kPkcs11, "the vault's SoftHSM folder has no free slot");
  }
  return p11::init_token(m, free_slot->id, so_pin, kOwnTokenLabel);
}

Status init_user_pin(std::shared_ptr<p11::Module> m, CK_SLOT_ID slot, const SecretBytes& so_pin,
                     const SecretBytes& pin) {
  KEYPORT_ASSIGN_OR_RETURN(p11::Session s, p11::Session::open(std::move(m), slot, true));
  KEYPORT_TRY(s.login(so_pin, CKU_SO));
  KEYPORT_TRY(s.init_pin(pin));
  return s.close();
}

}  // namespace

Result<VaultToken> attach_token(std::shared_ptr<p11::Module> module, const std::string& label,
                                SecretBytes pin) {
  if (!module) {
    return make_error(ErrorCode::kInvalidArgument, "attached-token mode needs a module");
  }
  p11::Uri uri;
  uri.token = label;
  KEYPORT_ASSIGN_OR_RETURN(p11::SlotInfo slot, p11::find_token(*module, uri));
  VaultToken t;
  t.module = std::move(module);
  t.slot = slot.id;
  t.pin = std::move(pin);
  t.info = slot.token.value_or(p11::TokenInfo{});
  return t;
}

Result<VaultToken> open_own_token(const fs::path& hsm_dir, const std::string& module_path) {
  std::error_code ec;
  fs::create_directories(hsm_dir / "tokens", ec);
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "cannot create " + (hsm_dir / "tokens").string() + ": " + ec.message());
  }
  ::chmod(hsm_dir.c_str(), 0700);
  const fs::path dir = fs::canonical(hsm_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot resolve " + hsm_dir.string());
  }
  const fs::path conf = dir / "softhsm2.conf";
  {
    WriteOptions o;
    o.overwrite = true;
    o.mode = 0600;
    auto existing = read_text_file(conf);
    std::string want = conf_text(dir / "tokens");
    if (!existing || *existing != want) {
      KEYPORT_TRY(write_file_atomic(conf, want, o));
    }
  }
  // Both PINs are written before the token exists, so an interrupted first open can finish.
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes so_pin, read_or_create_pin(dir / "so-pin"));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes pin, read_or_create_pin(dir / "pin"));
  KEYPORT_ASSIGN_OR_RETURN(auto module, load_for_conf(module_path, conf.string()));

  KEYPORT_ASSIGN_OR_RETURN(auto slot, find_slot_by_label(*module, kOwnTokenLabel));
  if (!slot) {
    log::info("vault: initialising the SoftHSM token in " + dir.string());
    KEYPORT_TRY(init_token(*module, so_pin));
    KEYPORT_ASSIGN_OR_RETURN(slot, find_slot_by_label(*module, kOwnTokenLabel));
    if (!slot) {
      return make_error(ErrorCode::kPkcs11, "the initialised vault token is not visible");
    }
  }
  if ((slot->token->flags & CKF_USER_PIN_INITIALIZED) == 0) {
    KEYPORT_TRY(init_user_pin(module, slot->id, so_pin, pin));
  }
  VaultToken t;
  t.module = std::move(module);
  t.slot = slot->id;
  t.pin = std::move(pin);
  t.info = *slot->token;
  return t;
}

}  // namespace keyport::vault
