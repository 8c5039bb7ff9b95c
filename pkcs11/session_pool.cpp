// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/session_pool.h"

#include "core/log.h"

namespace keyport::p11 {

SessionPool::SessionPool(std::shared_ptr<const Module> module, CK_SLOT_ID slot,
                         std::optional<SecretBytes> pin, std::size_t max_sessions)
    : m_module(std::move(module)), m_slot(slot), m_pin(std::move(pin)), m_max(max_sessions) {}

SessionPool::~SessionPool() {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_idle.clear();
}

SessionPool::Lease::~Lease() {
  if (m_pool != nullptr && m_session) {
    m_pool->give_back(std::move(m_session));
  }
}

Status SessionPool::close_all() {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_idle.size() != m_open) {
    return make_error(ErrorCode::kInternal,
                      std::to_string(m_open - m_idle.size()) + " PKCS#11 session(s) still in use");
  }
  m_idle.clear();
  m_open = 0;
  return {};
}

void SessionPool::retarget(CK_SLOT_ID slot) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_slot = slot;
}

Status SessionPool::log_in(Session& s) const {
  return m_pin ? s.login(*m_pin) : Status{};
}

Result<SessionPool::Lease> SessionPool::acquire() {
  m_acquisitions.fetch_add(1, std::memory_order_relaxed);
  std::unique_ptr<Session> session;
  CK_SLOT_ID slot = 0;
  {
    std::unique_lock<std::mutex> lock(m_mutex);
    m_cv.wait(lock, [this] { return !m_idle.empty() || m_max == 0 || m_open < m_max; });
    if (!m_idle.empty()) {
      session = std::move(m_idle.back());
      m_idle.pop_back();
    } else {
      ++m_open;
    }
    slot = m_slot;
  }
  if (session) {
    auto st = log_in(*session);
    if (st) {
      return Lease(this, std::move(session));
    }
    log::warn("dropping a PKCS#11 session that cannot log in: " + st.error().describe());
    session.reset();
  }
  auto opened = Session::open(m_module, slot, true);
  Status st = opened ? log_in(*opened) : Status(tl::unexpected(opened.error()));
  if (!st) {
    std::lock_guard<std::mutex> lock(m_mutex);
    --m_open;
    m_cv.notify_one();
    return tl::unexpected(st.error());
  }
  return Lease(this, std::make_unique<Session>(std::move(*opened)));
}

void SessionPool::give_back(std::unique_ptr<Session> session) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_idle.push_back(std::move(session));
  m_cv.notify_one();
}

}  // namespace keyport::p11
