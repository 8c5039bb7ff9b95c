// SPDX-License-Identifier: Apache-2.0
// A sample workload that keeps its records under a customer-managed key (CMK), the way an Azure
// service with customer-managed keys does, written as a customer would write it: it knows only the
// vault's REST API (Key Vault 7.5 over HTTPS, cpp-httplib), OpenSSL and JSON, nothing of keyport.
//
//   state/config.json   the vault URL and CA, the CMK's kid, and the data encryption key (DEK)
//                       wrapped by the CMK (wrapKey, RSA-OAEP-256); never the DEK itself
//   state/records/ID    nonce (12) || AES-256-GCM(DEK, record text, aad = "cmk-workload v1:" ID)
//
// Its identity is a bearer token (--token-file) that needs get, wrapKey and unwrapKey on the key.
// Every command unwraps the DEK through the vault first (unwrapKey), as a service does when it
// starts. `switch-key` is the workload's half of a key migration: it unwraps the DEK with the
// current key and wraps it with the new one; the records are not touched. A copy of the state
// folder is a backup: it keeps the DEK wrapped by the key of its time.
//
//   keyport_cmk_workload init --state DIR --vault URL --ca FILE --token-file F --key NAME
//   keyport_cmk_workload put --state DIR --token-file F --id ID --text TEXT
//   keyport_cmk_workload get --state DIR --token-file F --id ID
//   keyport_cmk_workload dump --state DIR --token-file F          (prints {"ID": "TEXT", ...})
//   keyport_cmk_workload switch-key --state DIR --token-file F --vault URL --ca FILE --key NAME
//
// Exit status 0 on success, 1 with a message on stderr otherwise.
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Bytes = std::vector<unsigned char>;

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    fail("cannot read " + p.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes a file next to its destination and renames it over it (mode 0600).
void write_atomic(const fs::path& p, const void* data, std::size_t n) {
  const fs::path tmp = p.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr || ::chmod(tmp.c_str(), 0600) != 0 || std::fwrite(data, 1, n, f) != n ||
      std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) {
    if (f != nullptr) {
      std::fclose(f);
    }
    fail("cannot write " + tmp.string());
  }
  std::fclose(f);
  fs::rename(tmp, p);
}

std::string b64url(const Bytes& b) {
  std::string out(4 * ((b.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), b.data(),
                                static_cast<int>(b.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  for (char& c : out) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return out;
}

Bytes unb64url(std::string s) {
  for (char& c : s) {
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  const std::size_t pad = (4 - s.size() % 4) % 4;
  s.append(pad, '=');
  Bytes out(s.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()),
                                static_cast<int>(s.size()));
  if (n < 0) {
    fail("bad base64url from the vault");
  }
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

// One vault, reached over HTTPS with the workload's bearer token.
class Vault {
 public:
  Vault(const std::string& url, const std::string& ca, const std::string& token) : m_token(token) {
    if (url.rfind("https://", 0) != 0) {
      fail("vault URL must be https://");
    }
    std::string host = url.substr(8);
    const auto colon = host.rfind(':');
    int port = 443;
    if (colon != std::string::npos) {
      port = std::stoi(host.substr(colon + 1));
      host = host.substr(0, colon);
    }
    m_client = std::make_unique<httplib::SSLClient>(host, port);
    m_client->set_ca_cert_path(ca.c_str());
    m_client->enable_server_certificate_verification(true);
    m_client->set_connection_timeout(10, 0);
    m_client->set_read_timeout(30, 0);
  }

  Json call(const std::string& method, const std::string& path, const Json* body = nullptr) {
    httplib::Headers h{{"Authorization", "Bearer " + m_token}};
    const std::string target = path + "?api-version=7.5";
    auto r = method == "GET" ? m_client->Get(target, h)
                             : m_client->Post(target, h, body->dump(), "application/json");
    if (!r) {
      fail(method + " " + path + ": no answer (" + httplib::to_string(r.error()) + ")");
    }
    Json j = Json::parse(r->body, nullptr, false);
    if (r->status != 200) {
      fail(method + " " + path + ": HTTP " + std::to_string(r->status) + " " + r->body);
    }
    return j;
  }

  // The path /keys/NAME/VERSION of a kid (whatever host the vault puts in its kids).
  static std::string key_path(const std::string& kid) {
    const auto at = kid.find("/keys/");
    if (at == std::string::npos) {
      fail("unexpected kid " + kid);
    }
    return kid.substr(at);
  }

  std::string latest_kid(const std::string& name) {
    return call("GET", "/keys/" + name)["key"]["kid"].get<std::string>();
  }
  std::string wrap(const std::string& kid, const Bytes& key) {
    Json body{{"alg", "RSA-OAEP-256"}, {"value", b64url(key)}};
    return call("POST", key_path(kid) + "/wrapkey", &body)["value"].get<std::string>();
  }
  Bytes unwrap(const std::string& kid, const std::string& wrapped) {
    Json body{{"alg", "RSA-OAEP-256"}, {"value", wrapped}};
    Json r = call("POST", key_path(kid) + "/unwrapkey", &body);
    std::string& v = r["value"].get_ref<std::string&>();
    Bytes key = unb64url(v);
    OPENSSL_cleanse(v.data(), v.size());
    return key;
  }

 private:
  std::string m_token;
  std::unique_ptr<httplib::SSLClient> m_client;
};

struct Args {
  std::map<std::string, std::string> opt;
  std::string get(const std::string& name) const {
    auto it = opt.find(name);
    if (it == opt.end()) {
      fail("missing --" + name);
    }
    return it->second;
  }
};

std::string token_of(const Args& a) {
  std::string t = read_text(a.get("token-file"));
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) {
    t.pop_back();
  }
  return t;
}

Json load_config(const fs::path& state) {
  return Json::parse(read_text(state / "config.json"));
}

void save_config(const fs::path& state, const Json& c) {
  const std::string text = c.dump(2) + "\n";
  write_atomic(state / "config.json", text.data(), text.size());
}

// The DEK, unwrapped by the vault the configuration names.
Bytes dek_of(const Json& c, const std::string& token) {
  Vault v(c["vault"].get<std::string>(), c["ca"].get<std::string>(), token);
  Bytes dek = v.unwrap(c["kid"].get<std::string>(), c["wrapped_dek"].get<std::string>());
  if (dek.size() != 32) {
    fail("the vault returned a data key of the wrong size");
  }
  return dek;
}

Bytes aad_of(const std::string& id) {
  const std::string a = "cmk-workload v1:" + id;
  return Bytes(a.begin(), a.end());
}

Bytes seal(const Bytes& dek, const std::string& id, const std::string& text) {
  Bytes out(12 + text.size() + 16);
  if (RAND_bytes(out.data(), 12) != 1) {
    fail("RAND_bytes");
  }
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  const Bytes aad = aad_of(id);
  int n = 0, m = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, dek.data(), out.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + 12, &n,
                        reinterpret_cast<const unsigned char*>(text.data()),
                        static_cast<int>(text.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + 12 + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.data() + 12 + text.size()) !=
          1) {
    fail("AES-GCM seal");
  }
  return out;
}

std::string open_record(const Bytes& dek, const std::string& id, const Bytes& rec) {
  if (rec.size() < 28) {
    fail("record " + id + " is truncated");
  }
  const std::size_t ct_len = rec.size() - 28;
  std::string text(ct_len, '\0');
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  const Bytes aad = aad_of(id);
  Bytes tag(rec.end() - 16, rec.end());
  int n = 0, m = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, dek.data(), rec.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(text.data()), &n,
                        rec.data() + 12, static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(text.data()) + n, &m) != 1) {
    fail("record " + id + " does not decrypt");
  }
  return text;
}

Bytes read_record(const fs::path& state, const std::string& id) {
  const std::string s = read_text(state / "records" / id);
  return Bytes(s.begin(), s.end());
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

int run(const std::string& cmd, const Args& a) {
  const fs::path state = a.get("state");
  if (cmd == "init") {
    fs::create_directories(state / "records");
    Vault v(a.get("vault"), a.get("ca"), token_of(a));
    Bytes dek(32);
    if (RAND_bytes(dek.data(), 32) != 1) {
      fail("RAND_bytes");
    }
    const std::string kid = v.latest_kid(a.get("key"));
    Json c{{"vault", a.get("vault")},
           {"ca", fs::absolute(a.get("ca")).string()},
           {"kid", kid},
           {"wrapped_dek", v.wrap(kid, dek)}};
    OPENSSL_cleanse(dek.data(), dek.size());
    save_config(state, c);
    std::cout << kid << "\n";
    return 0;
  }
  const Json c = load_config(state);
  if (cmd == "switch-key") {
    Bytes dek = dek_of(c, token_of(a));
    Vault to(a.get("vault"), a.get("ca"), token_of(a));
    const std::string kid = to.latest_kid(a.get("key"));
    Json n{{"vault", a.get("vault")},
           {"ca", fs::absolute(a.get("ca")).string()},
           {"kid", kid},
           {"wrapped_dek", to.wrap(kid, dek)}};
    // Before the new configuration replaces the old one: the new wrapping must give the same DEK.
    Bytes back = to.unwrap(kid, n["wrapped_dek"].get<std::string>());
    const bool same = back.size() == dek.size() && CRYPTO_memcmp(back.data(), dek.data(), 32) == 0;
    OPENSSL_cleanse(back.data(), back.size());
    OPENSSL_cleanse(dek.data(), dek.size());
    if (!same) {
      fail("the new key does not give back the data key; the workload still uses the old key");
    }
    save_config(state, n);
    std::cout << "switched from " << c["kid"].get<std::string>() << " to " << kid << "\n";
    return 0;
  }
  Bytes dek = dek_of(c, token_of(a));
  int rc = 0;
  if (cmd == "put") {
    const std::string id = a.get("id");
    if (!valid_id(id)) {
      fail("bad record id");
    }
    Bytes rec = seal(dek, id, a.get("text"));
    write_atomic(state / "records" / id, rec.data(), rec.size());
  } else if (cmd == "get") {
    std::cout << open_record(dek, a.get("id"), read_record(state, a.get("id"))) << "\n";
  } else if (cmd == "dump") {
    Json out = Json::object();
    for (const auto& e : fs::directory_iterator(state / "records")) {
      const std::string id = e.path().filename().string();
      if (valid_id(id)) {
        out[id] = open_record(dek, id, read_record(state, id));
      }
    }
    std::cout << out.dump() << "\n";
  } else {
    rc = 2;
    std::cerr << "unknown command " << cmd << "\n";
  }
  OPENSSL_cleanse(dek.data(), dek.size());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: keyport_cmk_workload init|put|get|dump|switch-key --state DIR ...\n";
    return 2;
  }
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      std::cerr << "unexpected " << k << "\n";
      return 2;
    }
    a.opt[k.substr(2)] = argv[i + 1];
  }
  try {
    return run(argv[1], a);
  } catch (const std::exception& e) {
    std::cerr << "cmk-workload: " << e.what() << "\n";
    return 1;
  }
}
