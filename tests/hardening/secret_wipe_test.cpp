// SPDX-License-Identifier: Apache-2.0
// SecretBytes wipes its storage before the storage goes back to the heap. This executable
// replaces the global operator new/delete: while a test "watches", every block freed is scanned
// before free() and the number of non-zero bytes recorded, so a test can ask what a block held
// at the moment it was released. The control case (a plain std::vector) shows that the detector
// sees unwiped memory, so the SecretBytes cases can fail.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/secret.h"

namespace {

struct Block {
  const void* ptr = nullptr;
  std::size_t size = 0;
  bool freed = false;
  std::size_t nonzero = 0;  // non-zero bytes at release
};

constexpr std::size_t kMaxBlocks = 256;
Block g_blocks[kMaxBlocks];
std::size_t g_count = 0;
bool g_watch = false;

void* allocate(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  if (g_watch && g_count < kMaxBlocks) {
    g_blocks[g_count++] = Block{p, n, false, 0};
  }
  return p;
}

void release(void* p) noexcept {
  if (p == nullptr) {
    return;
  }
  if (g_watch) {
    // The newest block with this address (addresses are reused after free).
    for (std::size_t i = g_count; i-- > 0;) {
      Block& b = g_blocks[i];
      if (b.ptr == p && !b.freed) {
        const auto* bytes = static_cast<const unsigned char*>(p);
        std::size_t nz = 0;
        for (std::size_t k = 0; k < b.size; ++k) {
          nz += bytes[k] != 0 ? 1 : 0;
        }
        b.nonzero = nz;
        b.freed = true;
        break;
      }
    }
  }
  std::free(p);
}

// Starts watching with an empty table; Watch's destructor stops.
struct Watch {
  Watch() {
    g_count = 0;
    g_watch = true;
  }
  ~Watch() { g_watch = false; }
  // The block at `p` (the newest one), or nullptr.
  static const Block* find(const void* p) {
    for (std::size_t i = g_count; i-- > 0;) {
      if (g_blocks[i].ptr == p) {
        return &g_blocks[i];
      }
    }
    return nullptr;
  }
};

keyport::SecretBytes pattern(std::size_t n) {
  keyport::SecretBytes s(n);
  auto m = s.reveal_mut(keyport::SecretAccess::unsafe());
  std::memset(m.data(), 0xA5, m.size());
  return s;
}

}  // namespace

void* operator new(std::size_t n) {
  return allocate(n);
}
void* operator new[](std::size_t n) {
  return allocate(n);
}
void operator delete(void* p) noexcept {
  release(p);
}
void operator delete[](void* p) noexcept {
  release(p);
}
void operator delete(void* p, std::size_t) noexcept {
  release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  release(p);
}
// The nothrow forms too (Catch2 allocates with them): every block must come from and go back to
// malloc, or a sanitizer's allocator sees a new/free mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  release(p);
}

using keyport::SecretAccess;
using keyport::SecretBytes;

TEST_CASE("control: the detector sees what a plain vector leaves in freed memory",
          "[hardening][secret]") {
  const void* where = nullptr;
  {
    Watch w;
    {
      std::vector<unsigned char> plain(64, 0xA5);
      where = plain.data();
    }
    const Block* b = Watch::find(where);
    REQUIRE(b != nullptr);
    CHECK(b->freed);
    CHECK(b->size == 64);
    CHECK(b->nonzero == 64);  // nobody wiped it: the detector can fail a test
  }
}

TEST_CASE("SecretBytes is wiped when it is destroyed", "[hardening][secret]") {
  Watch w;
  const void* where = nullptr;
  {
    SecretBytes s = pattern(48);
    where = s.reveal(SecretAccess::unsafe()).data();
  }
  const Block* b = Watch::find(where);
  REQUIRE(b != nullptr);
  CHECK(b->freed);
  CHECK(b->size == 48);
  CHECK(b->nonzero == 0);
}

TEST_CASE("SecretBytes wipes the old block when it grows and reallocates", "[hardening][secret]") {
  Watch w;
  SecretBytes s = pattern(16);
  const void* old_block = s.reveal(SecretAccess::unsafe()).data();
  std::vector<std::uint8_t> more(4096, 0x5A);
  s.append(more);  // forces a reallocation
  REQUIRE(s.reveal(SecretAccess::unsafe()).data() != old_block);
  const Block* b = Watch::find(old_block);
  REQUIRE(b != nullptr);
  CHECK(b->freed);
  CHECK(b->nonzero == 0);
  const void* second = s.reveal(SecretAccess::unsafe()).data();
  s.resize(1 << 16);  // and once more through resize()
  const Block* b2 = Watch::find(second);
  REQUIRE(b2 != nullptr);
  CHECK(b2->freed);
  CHECK(b2->nonzero == 0);
}

TEST_CASE("SecretBytes wipes what a move assignment replaces and what clone copies",
          "[hardening][secret]") {
  Watch w;
  SecretBytes target = pattern(32);
  const void* replaced = target.reveal(SecretAccess::unsafe()).data();
  SecretBytes source = pattern(40);
  SecretBytes copy = source.clone();
  const void* copied = copy.reveal(SecretAccess::unsafe()).data();
  target = std::move(source);
  const Block* b = Watch::find(replaced);
  REQUIRE(b != nullptr);
  CHECK(b->freed);
  CHECK(b->nonzero == 0);
  CHECK(source.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  { SecretBytes gone = std::move(copy); }
  const Block* c = Watch::find(copied);
  REQUIRE(c != nullptr);
  CHECK(c->freed);
  CHECK(c->nonzero == 0);
}

TEST_CASE("SecretBytes::truncate wipes the dropped tail", "[hardening][secret]") {
  Watch w;
  SecretBytes s = pattern(64);
  const unsigned char* base = s.reveal(SecretAccess::unsafe()).data();
  s.truncate(8);
  // The block is still the vector's (capacity 64): its tail must already be zero.
  std::size_t nonzero_tail = 0;
  for (std::size_t i = 8; i < 64; ++i) {
    nonzero_tail += base[i] != 0 ? 1 : 0;
  }
  CHECK(nonzero_tail == 0);
  CHECK(s.size() == 8);
}
