// SPDX-License-Identifier: Apache-2.0
#include "tests/support/softhsm.h"

#include <cstdlib>
#include <stdexcept>

#include "pkcs11/uri.h"
#include "tests/support/support.h"

namespace keyport::test {
namespace fs = std::filesystem;

SoftHsm& SoftHsm::get() {
  static SoftHsm instance;
  return instance;
}

SoftHsm::SoftHsm() {
  m_dir = make_scratch_subdir("softhsm");
  std::string cmd = (source_dir() / "softhsm-config" / "init-tokens.sh").string() + " " +
                    m_dir.string() + " " + kOnpremToken + ":1111:" + kOnpremPin + " " +
                    kVaultToken + ":3333:" + kVaultPin;
  std::string out;
  if (run_command(cmd, &out) != 0)
    throw std::runtime_error("init-tokens.sh failed: " + out);
  ::setenv("SOFTHSM2_CONF", (m_dir / "softhsm2.conf").c_str(), 1);
  auto m = p11::Module::load(KEYPORT_DEFAULT_MODULE);
  if (!m)
    throw std::runtime_error(m.error().describe());
  m_module = *m;
}

p11::SlotInfo SoftHsm::slot(const std::string& label) const {
  p11::Uri uri;
  uri.token = label;
  auto s = p11::find_token(*m_module, uri);
  if (!s)
    throw std::runtime_error(s.error().describe());
  return *s;
}

p11::Session SoftHsm::login(const std::string& label) const {
  auto session = p11::Session::open(m_module, slot(label).id, true);
  if (!session)
    throw std::runtime_error(session.error().describe());
  auto pin = SecretBytes::from_string(label == kVaultToken ? kVaultPin : kOnpremPin);
  auto st = session->login(pin);
  if (!st)
    throw std::runtime_error(st.error().describe());
  return std::move(*session);
}

std::size_t count_session_objects(const p11::Session& session, CK_OBJECT_CLASS cls) {
  p11::Template t;
  t.object_class(cls).token(false);
  auto found = session.find_objects(t);
  if (!found)
    throw std::runtime_error(found.error().describe());
  return found->size();
}

}  // namespace keyport::test
