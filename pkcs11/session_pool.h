// SPDX-License-Identifier: Apache-2.0
// Read-write sessions on one token, opened on demand, reused, and handed to one caller at a time:
// the vault's worker threads and a migration KEK's parallel wraps share one pool each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"

namespace keyport::p11 {

class SessionPool {
 public:
  // Sessions on `slot`, at most max_sessions open at once (0: no bound; acquire() then never
  // waits). With a PIN, acquire() logs each session in as user (cheap when the application is
  // logged in already: CKR_USER_ALREADY_LOGGED_IN), so a logout by another part of the process is
  // repaired on next use; without one, the sessions share the application's login (PKCS#11 §5.6:
  // login state is per application and token), which the caller keeps, for instance in a session
  // of its own.
  SessionPool(std::shared_ptr<const Module> module, CK_SLOT_ID slot, std::optional<SecretBytes> pin,
              std::size_t max_sessions);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  class Lease {
   public:
    Lease(SessionPool* pool, std::unique_ptr<Session> session)
        : m_pool(pool), m_session(std::move(session)) {}
    Lease(Lease&& other) noexcept : m_pool(other.m_pool), m_session(std::move(other.m_session)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    const Session& operator*() const { return *m_session; }
    const Session* operator->() const { return m_session.get(); }

   private:
    SessionPool* m_pool;
    std::unique_ptr<Session> m_session;
  };

  // A session for the caller's exclusive use until the Lease goes away (it must not outlive the
  // pool), waiting while max_sessions are in use; or the open/login error.
  Result<Lease> acquire();
  // Closes every idle session, for a module re-initialisation; kInternal when a session is
  // leased (the caller must hold off every user of the pool).
  Status close_all();
  // Sessions opened from now on go to `slot` (a re-initialised module may number slots anew).
  void retarget(CK_SLOT_ID slot);
  // How many leases were handed out since the pool was made.
  std::uint64_t acquisitions() const { return m_acquisitions.load(std::memory_order_relaxed); }

 private:
  void give_back(std::unique_ptr<Session> session);
  Status log_in(Session& s) const;

  std::shared_ptr<const Module> m_module;
  CK_SLOT_ID m_slot;
  std::optional<SecretBytes> m_pin;
  std::size_t m_max;  // 0: no bound
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<std::unique_ptr<Session>> m_idle;
  std::size_t m_open = 0;
  std::atomic<std::uint64_t> m_acquisitions{0};
};

}  // namespace keyport::p11
