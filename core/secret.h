// SPDX-License-Identifier: Apache-2.0
// SecretBytes: the only container for key material, PINs and passphrases.
//
// - zeroized (OPENSSL_cleanse) whenever its storage is released or reallocated;
// - move-only (clone() is explicit);
// - no printing, no implicit conversion to strings, no JSON serialisation;
// - bytes are reachable only through reveal(SecretAccess), so `grep SecretAccess` lists every
//   place that touches secret bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace keyport {

// Wipes n * sizeof(T) bytes with OPENSSL_cleanse before freeing.
void secure_wipe(void* p, std::size_t n);

template <typename T>
struct ZeroizingAllocator {
  static_assert(std::is_trivially_destructible_v<T> && std::is_integral_v<T>,
                "ZeroizingAllocator holds plain bytes only");
  using value_type = T;
  ZeroizingAllocator() noexcept = default;
  template <typename U>
  ZeroizingAllocator(const ZeroizingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept {
    secure_wipe(p, n * sizeof(T));
    ::operator delete(p);
  }
  template <typename U>
  bool operator==(const ZeroizingAllocator<U>&) const noexcept {
    return true;
  }
};

// A capability that must be presented to read secret bytes. Mint it only where exposure is the
// point (wrapping glue, the vault's release path, tests): SecretAccess::unsafe().
class SecretAccess {
 public:
  static SecretAccess unsafe() { return SecretAccess(); }

 private:
  SecretAccess() = default;
};

class SecretBytes final {
 public:
  using Storage = std::vector<std::uint8_t, ZeroizingAllocator<std::uint8_t>>;

  SecretBytes() = default;
  explicit SecretBytes(std::size_t size) : m_data(size) {}
  SecretBytes(std::span<const std::uint8_t> bytes) : m_data(bytes.begin(), bytes.end()) {}
  // Copies the characters of a string (for PINs typed at a prompt). The caller wipes its source.
  static SecretBytes from_string(std::string_view s) {
    return SecretBytes(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  }

  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept : m_data(std::move(other.m_data)) {
    other.m_data.clear();
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      m_data = std::move(other.m_data);
      other.m_data.clear();
    }
    return *this;
  }
  ~SecretBytes() = default;  // the allocator wipes

  SecretBytes clone() const {
    SecretBytes copy;
    copy.m_data = m_data;
    return copy;
  }

  std::size_t size() const { return m_data.size(); }
  bool empty() const { return m_data.empty(); }

  // Shrinks to n bytes; the tail is wiped before it is dropped.
  void truncate(std::size_t n) {
    if (n < m_data.size()) {
      secure_wipe(m_data.data() + n, m_data.size() - n);
      m_data.resize(n);
    }
  }
  // Grows without reallocating through a non-wiping path (reserve first, wipe old storage).
  void resize(std::size_t n);
  void append(std::span<const std::uint8_t> bytes);

  std::span<const std::uint8_t> reveal(SecretAccess) const {
    return {m_data.data(), m_data.size()};
  }
  std::span<std::uint8_t> reveal_mut(SecretAccess) { return {m_data.data(), m_data.size()}; }

  // Constant-time comparison (CRYPTO_memcmp); different lengths compare unequal.
  bool ct_equal(const SecretBytes& other) const;

 private:
  Storage m_data;
};

}  // namespace keyport
