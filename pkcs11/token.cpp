// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/token.h"

#include <algorithm>

namespace keyport::p11 {

std::string TokenInfo::firmware() const {
  return std::to_string(firmware_version.major) + "." + std::to_string(firmware_version.minor);
}

Result<TokenInfo> token_info(const Module& module, CK_SLOT_ID slot) {
  TokenInfo t;
  KEYPORT_TRY(KP11_CALL(module, C_GetTokenInfo, slot, &t.raw));
  t.label = trim_padded(t.raw.label, sizeof t.raw.label);
  t.manufacturer = trim_padded(t.raw.manufacturerID, sizeof t.raw.manufacturerID);
  t.model = trim_padded(t.raw.model, sizeof t.raw.model);
  t.serial = trim_padded(t.raw.serialNumber, sizeof t.raw.serialNumber);
  t.flags = t.raw.flags;
  t.hardware_version = t.raw.hardwareVersion;
  t.firmware_version = t.raw.firmwareVersion;
  return t;
}

Result<std::vector<SlotInfo>> list_slots(const Module& module, bool with_token_only) {
  CK_BBOOL present = with_token_only ? CK_TRUE : CK_FALSE;
  std::vector<CK_SLOT_ID> ids;
  // Two-call pattern; the slot count can change between calls, so retry on CKR_BUFFER_TOO_SMALL.
  for (int attempt = 0; attempt < 4; ++attempt) {
    CK_ULONG count = 0;
    KEYPORT_TRY(
        KP11_CALL(module, C_GetSlotList, present, static_cast<CK_SLOT_ID*>(nullptr), &count));
    ids.resize(count);
    CK_RV rv = KP11_CALL_RV(module, C_GetSlotList, present, ids.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL)
      continue;
    if (rv != CKR_OK)
      return tl::unexpected(pkcs11_error(rv, "C_GetSlotList"));
    ids.resize(count);
    break;
  }
  std::vector<SlotInfo> out;
  for (CK_SLOT_ID id : ids) {
    SlotInfo s;
    s.id = id;
    KEYPORT_TRY(KP11_CALL(module, C_GetSlotInfo, id, &s.raw));
    s.description = trim_padded(s.raw.slotDescription, sizeof s.raw.slotDescription);
    s.manufacturer = trim_padded(s.raw.manufacturerID, sizeof s.raw.manufacturerID);
    if (s.raw.flags & CKF_TOKEN_PRESENT) {
      auto t = token_info(module, id);
      if (t)
        s.token = std::move(*t);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<MechanismInfo>> list_mechanisms(const Module& module, CK_SLOT_ID slot) {
  CK_ULONG count = 0;
  KEYPORT_TRY(KP11_CALL(module, C_GetMechanismList, slot, static_cast<CK_MECHANISM_TYPE*>(nullptr),
                        &count));
  std::vector<CK_MECHANISM_TYPE> types(count);
  KEYPORT_TRY(KP11_CALL(module, C_GetMechanismList, slot, types.data(), &count));
  types.resize(count);
  std::vector<MechanismInfo> out;
  out.reserve(types.size());
  for (CK_MECHANISM_TYPE t : types) {
    CK_MECHANISM_INFO info{};
    MechanismInfo m;
    m.type = t;
    if (KP11_CALL_RV(module, C_GetMechanismInfo, slot, t, &info) == CKR_OK) {
      m.min_key_size = info.ulMinKeySize;
      m.max_key_size = info.ulMaxKeySize;
      m.flags = info.flags;
    }
    out.push_back(m);
  }
  return out;
}

Result<SlotInfo> find_token(const Module& module, const Uri& uri) {
  if (!uri.matches_library(module.info())) {
    return make_error(ErrorCode::kNotFound, "the module " + module.path() +
                                                " does not match the library attributes of " +
                                                uri.format());
  }
  KEYPORT_ASSIGN_OR_RETURN(auto slots, list_slots(module, true));
  std::vector<SlotInfo> hits;
  std::string available;
  for (auto& s : slots) {
    if (!s.token || !s.token->initialized())
      continue;
    available += (available.empty() ? "" : ", ") + ("\"" + s.token->label + "\"");
    if (uri.matches_slot(s.id, s.raw) && uri.matches_token(s.token->raw))
      hits.push_back(s);
  }
  if (hits.empty()) {
    return make_error(ErrorCode::kNotFound,
                      "no token matches " + uri.format() + " in " + module.path() +
                          (available.empty() ? " (the module has no initialised token)"
                                             : " (tokens: " + available + ")"));
  }
  if (hits.size() > 1) {
    return make_error(ErrorCode::kInvalidArgument, std::to_string(hits.size()) + " tokens match " +
                                                       uri.format() +
                                                       "; add serial= or slot-id= to the URI");
  }
  return hits.front();
}

Status init_token(const Module& module, CK_SLOT_ID slot, const SecretBytes& so_pin,
                  std::string_view label) {
  if (label.size() > 32)
    return make_error(ErrorCode::kInvalidArgument, "a token label is at most 32 bytes");
  CK_UTF8CHAR padded[32];
  std::fill(std::begin(padded), std::end(padded), static_cast<CK_UTF8CHAR>(' '));
  std::copy(label.begin(), label.end(), padded);
  auto so = so_pin.reveal(SecretAccess::unsafe());
  return KP11_CALL(module, C_InitToken, slot, const_cast<CK_UTF8CHAR*>(so.data()),
                   static_cast<CK_ULONG>(so.size()), padded);
}

}  // namespace keyport::p11
