/* SPDX-License-Identifier: Apache-2.0
 *
 * Smoke test of the keyport quirk module (see smoke.sh, which sets the environment).
 *
 *   smoke MODULE TEST
 *
 * TEST is one of: setup rsa-aes rsa-aes-unwrap pad-pkcs7 hide init-args no-batch ulong-exact
 * no-login pin-pad nul-padded plain. The user PIN is taken from SMOKE_PIN. Prints one
 * "PASS name" or "FAIL name: why" line per check, and exits non-zero if any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#ifndef CK_RSA_AES_KEY_WRAP_PARAMS_DEFINED
#define CK_RSA_AES_KEY_WRAP_PARAMS_DEFINED
typedef struct CK_RSA_AES_KEY_WRAP_PARAMS {
  CK_ULONG ulAESKeyBits;
  CK_RSA_PKCS_OAEP_PARAMS_PTR pOAEPParams;
} CK_RSA_AES_KEY_WRAP_PARAMS;
#endif
#ifndef CKM_RSA_AES_KEY_WRAP
#define CKM_RSA_AES_KEY_WRAP 0x00001054UL
#endif
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL
#endif
#define VENDOR_KWP 0x80000171UL /* passed to the module as alias=0x80000171:0x210A */

static CK_FUNCTION_LIST_PTR F;
static int failures, passes;
static const char* pin;

static void check(int ok, const char* name, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(int ok, const char* name, const char* fmt, ...) {
  if (ok) {
    printf("PASS %s\n", name);
    passes++;
  } else {
    va_list ap;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    failures++;
  }
}

#define MUST(call)                                                                        \
  do {                                                                                    \
    CK_RV rv_ = (call);                                                                   \
    if (rv_ != CKR_OK) {                                                                  \
      printf("FAIL %s:%d: %s -> 0x%lx\n", __FILE__, __LINE__, #call, (unsigned long)rv_); \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

static CK_BBOOL T = CK_TRUE, FA = CK_FALSE;

/* The slot of the token labelled "quirk" (SoftHSM also shows an empty, uninitialised token). */
static CK_SLOT_ID first_slot(void) {
  CK_SLOT_ID slots[16];
  CK_ULONG n = 16, i;
  MUST(F->C_GetSlotList(CK_TRUE, slots, &n));
  for (i = 0; i < n; i++) {
    CK_TOKEN_INFO ti;
    if (F->C_GetTokenInfo(slots[i], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED) &&
        memcmp(ti.label, "quirk", 5) == 0 && (ti.label[5] == ' ' || ti.label[5] == 0))
      return slots[i];
  }
  printf("FAIL no token labelled quirk\n");
  exit(1);
}

static CK_SESSION_HANDLE open_session(int login) {
  CK_SESSION_HANDLE s;
  MUST(F->C_OpenSession(first_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
  if (login) {
    CK_RV rv = F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      printf("FAIL C_Login -> 0x%lx\n", (unsigned long)rv);
      exit(1);
    }
  }
  return s;
}

static CK_ULONG count_objects(CK_SESSION_HANDLE s, CK_ATTRIBUTE* tmpl, CK_ULONG n) {
  CK_OBJECT_HANDLE h[64];
  CK_ULONG got = 0, total = 0;
  MUST(F->C_FindObjectsInit(s, tmpl, n));
  do {
    MUST(F->C_FindObjects(s, h, 64, &got));
    total += got;
  } while (got > 0);
  MUST(F->C_FindObjectsFinal(s));
  return total;
}

static CK_ULONG session_objects(CK_SESSION_HANDLE s) {
  CK_ATTRIBUTE a = {CKA_TOKEN, &FA, sizeof FA};
  return count_objects(s, &a, 1);
}

static CK_OBJECT_HANDLE create_aes(CK_SESSION_HANDLE s, const unsigned char* v, CK_ULONG len,
                                   CK_BBOOL sensitive, CK_BBOOL extractable) {
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE kt = CKK_AES;
  CK_OBJECT_HANDLE h;
  CK_ATTRIBUTE t[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_KEY_TYPE, &kt, sizeof kt},
      {CKA_TOKEN, &FA, sizeof FA},
      {CKA_VALUE, (void*)v, len},
      {CKA_SENSITIVE, &sensitive, sizeof sensitive},
      {CKA_EXTRACTABLE, &extractable, sizeof extractable},
      {CKA_ENCRYPT, &T, sizeof T},
      {CKA_WRAP, &T, sizeof T},
      {CKA_UNWRAP, &T, sizeof T},
  };
  MUST(F->C_CreateObject(s, t, sizeof t / sizeof t[0], &h));
  return h;
}

static void gen_rsa(CK_SESSION_HANDLE s, CK_BBOOL extractable, CK_OBJECT_HANDLE* pub,
                    CK_OBJECT_HANDLE* priv) {
  CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
  CK_ULONG bits = 2048;
  unsigned char e[] = {1, 0, 1};
  CK_ATTRIBUTE pt[] = {
      {CKA_TOKEN, &FA, sizeof FA},        {CKA_MODULUS_BITS, &bits, sizeof bits},
      {CKA_PUBLIC_EXPONENT, e, sizeof e}, {CKA_WRAP, &T, sizeof T},
      {CKA_VERIFY, &T, sizeof T},         {CKA_ENCRYPT, &T, sizeof T},
  };
  CK_ATTRIBUTE st[] = {
      {CKA_TOKEN, &FA, sizeof FA},   {CKA_PRIVATE, &T, sizeof T},
      {CKA_SENSITIVE, &T, sizeof T}, {CKA_EXTRACTABLE, &extractable, sizeof extractable},
      {CKA_UNWRAP, &T, sizeof T},    {CKA_SIGN, &T, sizeof T},
      {CKA_DECRYPT, &T, sizeof T},
  };
  MUST(F->C_GenerateKeyPair(s, &m, pt, sizeof pt / sizeof pt[0], st, sizeof st / sizeof st[0], pub,
                            priv));
}

static CK_RV get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                      unsigned char* buf, CK_ULONG* len) {
  CK_ATTRIBUTE a = {type, buf, *len};
  CK_RV rv = F->C_GetAttributeValue(s, o, &a, 1);
  *len = a.ulValueLen;
  return rv;
}

static void rand_bytes(unsigned char* p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++)
    p[i] = (unsigned char)(seed * 131u + i * 29u + 7u);
}

/* Software AES key wrap; pad=1: RFC 5649, pad=0: RFC 3394. */
static int sw_wrap(int enc, int pad, const unsigned char* kek, size_t keklen,
                   const unsigned char* in, size_t inlen, unsigned char* out, size_t* outlen) {
  const EVP_CIPHER* c;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int l1 = 0, l2 = 0, ok = 0;
  if (keklen == 16)
    c = pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
  else if (keklen == 24)
    c = pad ? EVP_aes_192_wrap_pad() : EVP_aes_192_wrap();
  else
    c = pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap();
  EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex(ctx, c, NULL, kek, NULL, enc) == 1 &&
      EVP_CipherUpdate(ctx, out, &l1, in, (int)inlen) == 1 &&
      EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1) {
    *outlen = (size_t)(l1 + l2);
    ok = 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

static int oaep_decrypt(EVP_PKEY* k, const unsigned char* in, size_t inlen, unsigned char* out,
                        size_t* outlen) {
  EVP_PKEY_CTX* c = EVP_PKEY_CTX_new(k, NULL);
  int ok = c && EVP_PKEY_decrypt_init(c) == 1 &&
           EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha1()) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha1()) == 1 &&
           EVP_PKEY_decrypt(c, out, outlen, in, inlen) == 1;
  EVP_PKEY_CTX_free(c);
  return ok;
}

static CK_RSA_PKCS_OAEP_PARAMS oaep_sha1 = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};

/* As keyport does: the module may use threads and OS locking. */
static void init_plain(void) {
  CK_C_INITIALIZE_ARGS a;
  memset(&a, 0, sizeof a);
  a.flags = CKF_OS_LOCKING_OK;
  MUST(F->C_Initialize(&a));
}

/* ---- setup: a private token object for no-login / pin-pad --------------------------------- */

static const char priv_label[] = "smoke-private";

static CK_ULONG count_private(CK_SESSION_HANDLE s) {
  CK_OBJECT_CLASS cls = CKO_DATA;
  CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof cls},
                      {CKA_LABEL, (void*)priv_label, sizeof priv_label - 1}};
  return count_objects(s, a, 2);
}

static void test_setup(void) {
  CK_SESSION_HANDLE s;
  init_plain();
  s = open_session(1);
  if (count_private(s) == 0) {
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE h;
    unsigned char v[] = "private data";
    CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_TOKEN, &T, sizeof T},
                        {CKA_PRIVATE, &T, sizeof T},
                        {CKA_LABEL, (void*)priv_label, sizeof priv_label - 1},
                        {CKA_VALUE, v, sizeof v - 1}};
    MUST(F->C_CreateObject(s, a, 5, &h));
  }
  check(count_private(s) == 1, "setup private object", "not found");
  MUST(F->C_Logout(s));
  check(count_private(s) == 0, "setup private object hidden without login", "visible");
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* ---- native-rsa-aes ------------------------------------------------------------------------- */

static CK_OBJECT_HANDLE import_pub(CK_SESSION_HANDLE s, EVP_PKEY* k) {
  BIGNUM *n = NULL, *e = NULL;
  unsigned char nb[512], eb[16];
  int nl, el;
  CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
  CK_KEY_TYPE kt = CKK_RSA;
  CK_OBJECT_HANDLE h;
  EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
  nl = BN_bn2bin(n, nb);
  el = BN_bn2bin(e, eb);
  BN_free(n);
  BN_free(e);
  {
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},   {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &FA, sizeof FA},     {CKA_WRAP, &T, sizeof T},
        {CKA_MODULUS, nb, (CK_ULONG)nl}, {CKA_PUBLIC_EXPONENT, eb, (CK_ULONG)el},
    };
    MUST(F->C_CreateObject(s, t, sizeof t / sizeof t[0], &h));
  }
  return h;
}

static void test_rsa_aes(void) {
  CK_SESSION_HANDLE s;
  CK_ULONG before, after, len, bits_list[] = {256, 128, 192}, i;
  EVP_PKEY* kek = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  unsigned char known[32], out[4096], aes[512], plain[4096];
  size_t aeslen, plen;
  CK_OBJECT_HANDLE pub, target, rpub, rpriv, noext;
  CK_RV rv;
  CK_MECHANISM_TYPE mechs[256];
  CK_ULONG nm = 256;
  CK_MECHANISM_INFO mi;
  int listed = 0;

  init_plain();
  s = open_session(1);
  MUST(F->C_GetMechanismList(first_slot(), mechs, &nm));
  for (i = 0; i < nm; i++)
    listed |= mechs[i] == CKM_RSA_AES_KEY_WRAP;
  check(listed, "rsa-aes listed", "0x1054 not in C_GetMechanismList");
  rv = F->C_GetMechanismInfo(first_slot(), CKM_RSA_AES_KEY_WRAP, &mi);
  check(rv == CKR_OK && mi.flags == (CKF_WRAP | CKF_UNWRAP) && mi.ulMinKeySize == 2048 &&
            mi.ulMaxKeySize == 4096,
        "rsa-aes mechanism info", "rv 0x%lx flags 0x%lx", (unsigned long)rv,
        (unsigned long)mi.flags);

  before = session_objects(s);
  rand_bytes(known, sizeof known, 1);
  pub = import_pub(s, kek);
  target = create_aes(s, known, 32, CK_TRUE, CK_TRUE);

  for (i = 0; i < 3; i++) {
    CK_RSA_AES_KEY_WRAP_PARAMS p = {bits_list[i], &oaep_sha1};
    CK_MECHANISM m = {CKM_RSA_AES_KEY_WRAP, &p, sizeof p};
    CK_ULONG expect = 256 + 32 + 8, small;
    char name[64];
    snprintf(name, sizeof name, "rsa-aes wrap AES-256 target, AES-%lu ephemeral",
             (unsigned long)bits_list[i]);
    len = 0;
    rv = F->C_WrapKey(s, &m, pub, target, NULL, &len);
    check(rv == CKR_OK && len == expect, "rsa-aes length query", "rv 0x%lx len %lu",
          (unsigned long)rv, (unsigned long)len);
    small = len - 1;
    rv = F->C_WrapKey(s, &m, pub, target, out, &small);
    check(rv == CKR_BUFFER_TOO_SMALL && small == expect, "rsa-aes buffer too small",
          "rv 0x%lx len %lu", (unsigned long)rv, (unsigned long)small);
    len = sizeof out;
    rv = F->C_WrapKey(s, &m, pub, target, out, &len);
    aeslen = sizeof aes;
    plen = sizeof plain;
    check(rv == CKR_OK && len == expect && oaep_decrypt(kek, out, 256, aes, &aeslen) &&
              aeslen == bits_list[i] / 8 &&
              sw_wrap(0, 1, aes, aeslen, out + 256, len - 256, plain, &plen) && plen == 32 &&
              memcmp(plain, known, 32) == 0,
          name, "rv 0x%lx len %lu aeslen %zu plen %zu", (unsigned long)rv, (unsigned long)len,
          aeslen, plen);
  }

  /* An RSA private key as target: the KWP part holds its PKCS#8 encoding. */
  gen_rsa(s, CK_TRUE, &rpub, &rpriv);
  {
    CK_RSA_AES_KEY_WRAP_PARAMS p = {256, &oaep_sha1};
    CK_MECHANISM m = {CKM_RSA_AES_KEY_WRAP, &p, sizeof p};
    unsigned char mod[512];
    CK_ULONG modlen = sizeof mod;
    int same = 0;
    len = sizeof out;
    rv = F->C_WrapKey(s, &m, pub, rpriv, out, &len);
    aeslen = sizeof aes;
    plen = sizeof plain;
    MUST(get_attr(s, rpub, CKA_MODULUS, mod, &modlen));
    if (rv == CKR_OK && oaep_decrypt(kek, out, 256, aes, &aeslen) &&
        sw_wrap(0, 1, aes, aeslen, out + 256, len - 256, plain, &plen)) {
      const unsigned char* q = plain;
      PKCS8_PRIV_KEY_INFO* p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)plen);
      EVP_PKEY* pk = p8 ? EVP_PKCS82PKEY(p8) : NULL;
      BIGNUM* n = NULL;
      unsigned char nb[512];
      size_t der = (size_t)(q - plain), z;
      if (pk && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) == 1)
        same = BN_bn2bin(n, nb) == (int)modlen && memcmp(nb, mod, modlen) == 0;
      /* SoftHSM 2.6.1 zero-pads the PKCS#8 to a multiple of 8 inside the KWP part (keyport's
       * softhsm-kwp-zero-padding quirk); the native mechanism inherits that. */
      for (z = der; same && z < plen; z++)
        same = plain[z] == 0;
      same = same && plen - der < 8 && plen % 8 == 0;
      printf("note: PKCS#8 %zu bytes, KWP payload %zu bytes\n", der, plen);
      BN_free(n);
      EVP_PKEY_free(pk);
      PKCS8_PRIV_KEY_INFO_free(p8);
    }
    check(same, "rsa-aes wrap RSA private target (PKCS#8 modulus matches)", "rv 0x%lx",
          (unsigned long)rv);
  }

  /* Error paths leave no objects behind. */
  {
    CK_RSA_AES_KEY_WRAP_PARAMS p = {256, &oaep_sha1};
    CK_MECHANISM m = {CKM_RSA_AES_KEY_WRAP, &p, sizeof p - 1};
    CK_RSA_AES_KEY_WRAP_PARAMS bad = {100, &oaep_sha1};
    CK_MECHANISM mb = {CKM_RSA_AES_KEY_WRAP, &bad, sizeof bad};
    len = sizeof out;
    rv = F->C_WrapKey(s, &m, pub, target, out, &len);
    check(rv == CKR_MECHANISM_PARAM_INVALID, "rsa-aes bad parameter length", "rv 0x%lx",
          (unsigned long)rv);
    rv = F->C_WrapKey(s, &mb, pub, target, out, &len);
    check(rv == CKR_MECHANISM_PARAM_INVALID, "rsa-aes bad ulAESKeyBits", "rv 0x%lx",
          (unsigned long)rv);
    m.ulParameterLen = sizeof p;
    rv = F->C_WrapKey(s, &m, 0x7fff, target, out, &len);
    check(rv != CKR_OK, "rsa-aes bad wrapping key fails", "rv 0x%lx", (unsigned long)rv);
    rand_bytes(aes, 32, 9);
    noext = create_aes(s, aes, 32, CK_TRUE, CK_FALSE);
    rv = F->C_WrapKey(s, &m, pub, noext, out, &len);
    check(rv == CKR_KEY_UNEXTRACTABLE, "rsa-aes unextractable target refused", "rv 0x%lx",
          (unsigned long)rv);
    MUST(F->C_DestroyObject(s, noext));
  }

  MUST(F->C_DestroyObject(s, pub));
  MUST(F->C_DestroyObject(s, target));
  MUST(F->C_DestroyObject(s, rpub));
  MUST(F->C_DestroyObject(s, rpriv));
  after = session_objects(s);
  check(before == after, "rsa-aes no session objects left", "before %lu after %lu",
        (unsigned long)before, (unsigned long)after);
  EVP_PKEY_free(kek);
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* Encrypts one block with token key k and with the known value (AES-128 or AES-256) in software. */
static int same_ecb(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, const unsigned char* known,
                    size_t klen) {
  CK_MECHANISM m = {CKM_AES_ECB, NULL, 0};
  unsigned char block[16] = "keyport smoke!!", c1[16], c2[32];
  CK_ULONG l = sizeof c1;
  int l2 = 0, ok;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (F->C_EncryptInit(s, &m, k) != CKR_OK || F->C_Encrypt(s, block, 16, c1, &l) != CKR_OK)
    return 0;
  ok = EVP_EncryptInit_ex(ctx, klen == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(), NULL, known,
                          NULL) == 1 &&
       EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 && EVP_EncryptUpdate(ctx, c2, &l2, block, 16) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok && l == 16 && l2 == 16 && memcmp(c1, c2, 16) == 0;
}

static void test_rsa_aes_unwrap(void) {
  CK_SESSION_HANDLE s;
  CK_ULONG before, after, len;
  unsigned char known[32], out[4096];
  CK_OBJECT_HANDLE pub, priv, target, tpub, tpriv, got = CK_INVALID_HANDLE;
  CK_RSA_AES_KEY_WRAP_PARAMS p = {256, &oaep_sha1};
  CK_MECHANISM m = {CKM_RSA_AES_KEY_WRAP, &p, sizeof p};
  CK_OBJECT_CLASS sk = CKO_SECRET_KEY, pk = CKO_PRIVATE_KEY;
  CK_KEY_TYPE aes = CKK_AES, rsa = CKK_RSA;
  CK_ATTRIBUTE at[] = {
      {CKA_CLASS, &sk, sizeof sk},   {CKA_KEY_TYPE, &aes, sizeof aes},
      {CKA_TOKEN, &FA, sizeof FA},   {CKA_ENCRYPT, &T, sizeof T},
      {CKA_SENSITIVE, &T, sizeof T}, {CKA_EXTRACTABLE, &FA, sizeof FA},
  };
  CK_ATTRIBUTE pt[] = {
      {CKA_CLASS, &pk, sizeof pk}, {CKA_KEY_TYPE, &rsa, sizeof rsa}, {CKA_TOKEN, &FA, sizeof FA},
      {CKA_SIGN, &T, sizeof T},    {CKA_SENSITIVE, &T, sizeof T},    {CKA_PRIVATE, &T, sizeof T},
  };
  CK_RV rv;

  init_plain();
  s = open_session(1);
  before = session_objects(s);
  gen_rsa(s, CK_FALSE, &pub, &priv);
  rand_bytes(known, sizeof known, 2);
  target = create_aes(s, known, 32, CK_TRUE, CK_TRUE);

  len = sizeof out;
  MUST(F->C_WrapKey(s, &m, pub, target, out, &len));
  rv = F->C_UnwrapKey(s, &m, priv, out, len, at, sizeof at / sizeof at[0], &got);
  check(rv == CKR_OK && same_ecb(s, got, known, 32), "rsa-aes unwrap AES key (same ECB result)",
        "rv 0x%lx", (unsigned long)rv);
  /* (CKA_CHECK_VALUE is not compared: SoftHSM 2.6.1 leaves it empty on unwrapped keys.) */
  if (got != CK_INVALID_HANDLE)
    MUST(F->C_DestroyObject(s, got));

  /* Length query then the real call through the cache, then unwrap. */
  len = 0;
  MUST(F->C_WrapKey(s, &m, pub, target, NULL, &len));
  MUST(F->C_WrapKey(s, &m, pub, target, out, &len));
  got = CK_INVALID_HANDLE;
  rv = F->C_UnwrapKey(s, &m, priv, out, len, at, sizeof at / sizeof at[0], &got);
  check(rv == CKR_OK && same_ecb(s, got, known, 32), "rsa-aes query+wrap then unwrap", "rv 0x%lx",
        (unsigned long)rv);
  if (got != CK_INVALID_HANDLE)
    MUST(F->C_DestroyObject(s, got));

  /* RSA private key target: unwrap and sign, verify with the original public key. */
  gen_rsa(s, CK_TRUE, &tpub, &tpriv);
  len = sizeof out;
  MUST(F->C_WrapKey(s, &m, pub, tpriv, out, &len));
  got = CK_INVALID_HANDLE;
  rv = F->C_UnwrapKey(s, &m, priv, out, len, pt, sizeof pt / sizeof pt[0], &got);
  {
    CK_MECHANISM sm = {CKM_SHA256_RSA_PKCS, NULL, 0};
    unsigned char msg[] = "hello", sig[512];
    CK_ULONG sl = sizeof sig;
    CK_RV sr = CKR_GENERAL_ERROR, vr = CKR_GENERAL_ERROR;
    if (rv == CKR_OK && (sr = F->C_SignInit(s, &sm, got)) == CKR_OK &&
        (sr = F->C_Sign(s, msg, 5, sig, &sl)) == CKR_OK &&
        (vr = F->C_VerifyInit(s, &sm, tpub)) == CKR_OK)
      vr = F->C_Verify(s, msg, 5, sig, sl);
    check(rv == CKR_OK && sr == CKR_OK && vr == CKR_OK, "rsa-aes unwrap RSA private key (signs)",
          "rv 0x%lx sign 0x%lx verify 0x%lx", (unsigned long)rv, (unsigned long)sr,
          (unsigned long)vr);
  }
  if (got != CK_INVALID_HANDLE)
    MUST(F->C_DestroyObject(s, got));

  /* Damaged input: no object, no leftovers. */
  len = sizeof out;
  MUST(F->C_WrapKey(s, &m, pub, target, out, &len));
  out[len - 3] ^= 0x40;
  got = CK_INVALID_HANDLE;
  rv = F->C_UnwrapKey(s, &m, priv, out, len, at, sizeof at / sizeof at[0], &got);
  check(rv != CKR_OK && got == CK_INVALID_HANDLE, "rsa-aes unwrap damaged KWP part fails",
        "rv 0x%lx", (unsigned long)rv);
  out[len - 3] ^= 0x40;
  out[10] ^= 0x01;
  rv = F->C_UnwrapKey(s, &m, priv, out, len, at, sizeof at / sizeof at[0], &got);
  check(rv != CKR_OK, "rsa-aes unwrap damaged RSA part fails", "rv 0x%lx", (unsigned long)rv);
  rv = F->C_UnwrapKey(s, &m, priv, out, 256, at, sizeof at / sizeof at[0], &got);
  check(rv == CKR_WRAPPED_KEY_LEN_RANGE, "rsa-aes unwrap too short", "rv 0x%lx", (unsigned long)rv);
  MUST(F->C_DestroyObject(s, pub));
  MUST(F->C_DestroyObject(s, priv));
  MUST(F->C_DestroyObject(s, tpub));
  MUST(F->C_DestroyObject(s, tpriv));
  MUST(F->C_DestroyObject(s, target));
  after = session_objects(s);
  check(before == after, "rsa-aes unwrap no session objects left", "before %lu after %lu",
        (unsigned long)before, (unsigned long)after);
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* ---- pad-pkcs7 (run with KEYPORT_QUIRKS=pad-pkcs7,alias=0x80000171:0x210A) --------------- */

static void test_pad_pkcs7(void) {
  CK_SESSION_HANDLE s;
  CK_ULONG before, after, len, sizes[] = {16, 32}, i, nm = 256;
  unsigned char wv[32], kv[32], out[256], expect[256], padded[64], val[64];
  size_t elen;
  CK_OBJECT_HANDLE w, k, got;
  CK_MECHANISM pad = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
  CK_MECHANISM vend = {VENDOR_KWP, NULL, 0};
  CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
  CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
  CK_KEY_TYPE aes = CKK_AES;
  CK_ATTRIBUTE at[] = {
      {CKA_CLASS, &sk, sizeof sk},     {CKA_KEY_TYPE, &aes, sizeof aes},
      {CKA_TOKEN, &FA, sizeof FA},     {CKA_SENSITIVE, &FA, sizeof FA},
      {CKA_EXTRACTABLE, &T, sizeof T}, {CKA_ENCRYPT, &T, sizeof T},
  };
  CK_MECHANISM_TYPE mechs[256];
  CK_MECHANISM_INFO mi;
  CK_RV rv;
  int has210b = 0, hasvend = 0, has210a = 0;

  init_plain();
  s = open_session(1);
  MUST(F->C_GetMechanismList(first_slot(), mechs, &nm));
  for (i = 0; i < nm; i++) {
    has210b |= mechs[i] == CKM_AES_KEY_WRAP_KWP;
    has210a |= mechs[i] == CKM_AES_KEY_WRAP_PAD;
    hasvend |= mechs[i] == VENDOR_KWP;
  }
  rv = F->C_GetMechanismInfo(first_slot(), CKM_AES_KEY_WRAP_KWP, &mi);
  check(!has210b && rv == CKR_MECHANISM_INVALID, "pad-pkcs7 hides 0x210B", "listed %d rv 0x%lx",
        has210b, (unsigned long)rv);
  check(has210a && hasvend, "pad-pkcs7 lists 0x210A and alias 0x80000171", "%d %d", has210a,
        hasvend);

  before = session_objects(s);
  rand_bytes(wv, 32, 3);
  w = create_aes(s, wv, 32, CK_TRUE, CK_FALSE);
  for (i = 0; i < 2; i++) {
    size_t n = sizes[i], pn = n + (8 - n % 8);
    char name[80];
    rand_bytes(kv, n, 4 + (unsigned)i);
    k = create_aes(s, kv, n, CK_TRUE, CK_TRUE);
    memcpy(padded, kv, n);
    memset(padded + n, (int)(pn - n), pn - n);
    sw_wrap(1, 0, wv, 32, padded, pn, expect, &elen);
    len = 0;
    rv = F->C_WrapKey(s, &pad, w, k, NULL, &len);
    snprintf(name, sizeof name, "pad-pkcs7 length query (%zu-byte key)", n);
    check(rv == CKR_OK && len == elen && elen == pn + 8, name, "rv 0x%lx len %lu expected %zu",
          (unsigned long)rv, (unsigned long)len, elen);
    len = sizeof out;
    rv = F->C_WrapKey(s, &pad, w, k, out, &len);
    snprintf(name, sizeof name, "pad-pkcs7 wrap %zu-byte key == RFC 3394(PKCS#7(key))", n);
    check(rv == CKR_OK && len == elen && memcmp(out, expect, elen) == 0, name, "rv 0x%lx len %lu",
          (unsigned long)rv, (unsigned long)len);
    got = CK_INVALID_HANDLE;
    rv = F->C_UnwrapKey(s, &pad, w, out, len, at, sizeof at / sizeof at[0], &got);
    {
      CK_ULONG vl = sizeof val;
      CK_RV gr = rv == CKR_OK ? get_attr(s, got, CKA_VALUE, val, &vl) : rv;
      snprintf(name, sizeof name, "pad-pkcs7 unwrap %zu-byte key back", n);
      check(rv == CKR_OK && gr == CKR_OK && vl == n && memcmp(val, kv, n) == 0, name,
            "rv 0x%lx/0x%lx len %lu", (unsigned long)rv, (unsigned long)gr, (unsigned long)vl);
    }
    if (got != CK_INVALID_HANDLE)
      MUST(F->C_DestroyObject(s, got));
    /* The vendor alias is the target's RFC 5649. */
    sw_wrap(1, 1, wv, 32, kv, n, expect, &elen);
    len = sizeof out;
    rv = F->C_WrapKey(s, &vend, w, k, out, &len);
    snprintf(name, sizeof name, "alias 0x80000171 wrap %zu-byte key == RFC 5649", n);
    check(rv == CKR_OK && len == elen && memcmp(out, expect, elen) == 0, name, "rv 0x%lx",
          (unsigned long)rv);
    got = CK_INVALID_HANDLE;
    rv = F->C_UnwrapKey(s, &vend, w, out, len, at, sizeof at / sizeof at[0], &got);
    check(rv == CKR_OK && same_ecb(s, got, kv, n), "alias 0x80000171 unwrap", "rv 0x%lx",
          (unsigned long)rv);
    if (got != CK_INVALID_HANDLE)
      MUST(F->C_DestroyObject(s, got));
    MUST(F->C_DestroyObject(s, k));
  }

  /* A 20-byte generic secret (SoftHSM itself would zero-pad it to 24 before wrapping). */
  {
    CK_OBJECT_CLASS gc = CKO_SECRET_KEY;
    CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
    unsigned char g20[20];
    CK_OBJECT_HANDLE gs;
    CK_ATTRIBUTE gt[] = {{CKA_CLASS, &gc, sizeof gc},   {CKA_KEY_TYPE, &gk, sizeof gk},
                         {CKA_TOKEN, &FA, sizeof FA},   {CKA_EXTRACTABLE, &T, sizeof T},
                         {CKA_SENSITIVE, &T, sizeof T}, {CKA_VALUE, g20, sizeof g20}};
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &gc, sizeof gc},
                         {CKA_KEY_TYPE, &gk, sizeof gk},
                         {CKA_TOKEN, &FA, sizeof FA},
                         {CKA_EXTRACTABLE, &T, sizeof T},
                         {CKA_SENSITIVE, &FA, sizeof FA}};
    CK_ULONG vl = sizeof val;
    CK_RV gr;
    rand_bytes(g20, sizeof g20, 12);
    MUST(F->C_CreateObject(s, gt, 6, &gs));
    memcpy(padded, g20, 20);
    memset(padded + 20, 4, 4);
    sw_wrap(1, 0, wv, 32, padded, 24, expect, &elen);
    len = sizeof out;
    rv = F->C_WrapKey(s, &pad, w, gs, out, &len);
    check(rv == CKR_OK && len == elen && elen == 32 && memcmp(out, expect, elen) == 0,
          "pad-pkcs7 wrap 20-byte generic secret == RFC 3394(key || 04040404)", "rv 0x%lx len %lu",
          (unsigned long)rv, (unsigned long)len);
    got = CK_INVALID_HANDLE;
    rv = F->C_UnwrapKey(s, &pad, w, out, len, ut, 5, &got);
    gr = rv == CKR_OK ? get_attr(s, got, CKA_VALUE, val, &vl) : rv;
    check(rv == CKR_OK && gr == CKR_OK && vl == 20 && memcmp(val, g20, 20) == 0,
          "pad-pkcs7 unwrap 20-byte generic secret back", "rv 0x%lx/0x%lx len %lu",
          (unsigned long)rv, (unsigned long)gr, (unsigned long)vl);
    if (got != CK_INVALID_HANDLE)
      MUST(F->C_DestroyObject(s, got));
    MUST(F->C_DestroyObject(s, gs));
  }
  /* An RSA private key: RFC 3394 over PKCS#7(PKCS#8), and back into a key that signs. */
  {
    CK_OBJECT_HANDLE tpub, tpriv;
    CK_OBJECT_CLASS pk = CKO_PRIVATE_KEY;
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_ATTRIBUTE pt[] = {
        {CKA_CLASS, &pk, sizeof pk}, {CKA_KEY_TYPE, &rsa, sizeof rsa}, {CKA_TOKEN, &FA, sizeof FA},
        {CKA_SIGN, &T, sizeof T},    {CKA_SENSITIVE, &T, sizeof T},    {CKA_PRIVATE, &T, sizeof T},
    };
    unsigned char big[4096], plain[4096], mod[512];
    size_t pl = 0;
    CK_ULONG bl = sizeof big, modlen = sizeof mod;
    int same = 0;
    gen_rsa(s, CK_TRUE, &tpub, &tpriv);
    MUST(get_attr(s, tpub, CKA_MODULUS, mod, &modlen));
    rv = F->C_WrapKey(s, &pad, w, tpriv, big, &bl);
    if (rv == CKR_OK && sw_wrap(0, 0, wv, 32, big, bl, plain, &pl) && pl > 8 &&
        plain[pl - 1] >= 1 && plain[pl - 1] <= 8) {
      const unsigned char* q = plain;
      size_t n8 = pl - plain[pl - 1];
      PKCS8_PRIV_KEY_INFO* p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)n8);
      EVP_PKEY* pkey = p8 && q == plain + n8 ? EVP_PKCS82PKEY(p8) : NULL;
      BIGNUM* bn = NULL;
      unsigned char nb[512];
      if (pkey && EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &bn) == 1)
        same = BN_bn2bin(bn, nb) == (int)modlen && memcmp(nb, mod, modlen) == 0;
      BN_free(bn);
      EVP_PKEY_free(pkey);
      PKCS8_PRIV_KEY_INFO_free(p8);
    }
    check(same, "pad-pkcs7 wrap RSA private key == RFC 3394(PKCS#7(PKCS#8))", "rv 0x%lx",
          (unsigned long)rv);
    got = CK_INVALID_HANDLE;
    rv = F->C_UnwrapKey(s, &pad, w, big, bl, pt, sizeof pt / sizeof pt[0], &got);
    {
      CK_MECHANISM sm = {CKM_SHA256_RSA_PKCS, NULL, 0};
      unsigned char msg[] = "hello", sig[512];
      CK_ULONG sl = sizeof sig;
      CK_RV vr = CKR_GENERAL_ERROR;
      if (rv == CKR_OK && F->C_SignInit(s, &sm, got) == CKR_OK &&
          F->C_Sign(s, msg, 5, sig, &sl) == CKR_OK && F->C_VerifyInit(s, &sm, tpub) == CKR_OK)
        vr = F->C_Verify(s, msg, 5, sig, sl);
      check(rv == CKR_OK && vr == CKR_OK, "pad-pkcs7 unwrap RSA private key (signs)",
            "rv 0x%lx verify 0x%lx", (unsigned long)rv, (unsigned long)vr);
    }
    if (got != CK_INVALID_HANDLE)
      MUST(F->C_DestroyObject(s, got));
    MUST(F->C_DestroyObject(s, tpub));
    MUST(F->C_DestroyObject(s, tpriv));
  }
  {
    CK_OBJECT_HANDLE noext;
    rand_bytes(kv, 32, 11);
    noext = create_aes(s, kv, 32, CK_TRUE, CK_FALSE);
    len = sizeof out;
    rv = F->C_WrapKey(s, &pad, w, noext, out, &len);
    check(rv == CKR_KEY_UNEXTRACTABLE, "pad-pkcs7 unextractable key refused", "rv 0x%lx",
          (unsigned long)rv);
    MUST(F->C_DestroyObject(s, noext));
  }

  /* Bad padding is refused. */
  {
    static const unsigned char tails[][8] = {
        {1, 2, 3, 4, 5, 6, 7, 9}, {1, 2, 3, 4, 5, 6, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 0}};
    CK_OBJECT_CLASS gc = CKO_SECRET_KEY;
    CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
    for (i = 0; i < 3; i++) {
      unsigned char v[24];
      CK_OBJECT_HANDLE gs;
      CK_ATTRIBUTE gt[] = {{CKA_CLASS, &gc, sizeof gc},
                           {CKA_KEY_TYPE, &gk, sizeof gk},
                           {CKA_TOKEN, &FA, sizeof FA},
                           {CKA_EXTRACTABLE, &T, sizeof T},
                           {CKA_VALUE, v, sizeof v}};
      rand_bytes(v, 16, 8);
      memcpy(v + 16, tails[i], 8);
      MUST(F->C_CreateObject(s, gt, 5, &gs));
      len = sizeof out;
      MUST(F->C_WrapKey(s, &kw, w, gs, out, &len));
      got = CK_INVALID_HANDLE;
      rv = F->C_UnwrapKey(s, &pad, w, out, len, at, sizeof at / sizeof at[0], &got);
      check(rv == CKR_WRAPPED_KEY_INVALID && got == CK_INVALID_HANDLE,
            "pad-pkcs7 bad padding refused", "case %lu rv 0x%lx", (unsigned long)i,
            (unsigned long)rv);
      MUST(F->C_DestroyObject(s, gs));
    }
  }
  rv = F->C_EncryptInit(s, &pad, w);
  check(rv == CKR_MECHANISM_INVALID, "pad-pkcs7 0x210A is wrap-only", "rv 0x%lx",
        (unsigned long)rv);
  MUST(F->C_DestroyObject(s, w));
  after = session_objects(s);
  check(before == after, "pad-pkcs7 no session objects left", "before %lu after %lu",
        (unsigned long)before, (unsigned long)after);
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* ---- hide (run with KEYPORT_QUIRKS=hide=0x210A:0x1081:0x1080,alias=0x80000171:0x210A) ---- */

static void test_hide(void) {
  CK_SESSION_HANDLE s;
  CK_MECHANISM_TYPE mechs[256];
  CK_ULONG nm = 256, i, len;
  CK_MECHANISM_INFO mi;
  CK_MECHANISM pad = {CKM_AES_KEY_WRAP_PAD, NULL, 0}, ecb = {CKM_AES_ECB, NULL, 0};
  CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, vend = {VENDOR_KWP, NULL, 0};
  unsigned char wv[32], kv[32], out[128], expect[128];
  size_t elen;
  CK_OBJECT_HANDLE w, k, h;
  CK_ULONG vl = 32;
  CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &vl, sizeof vl}, {CKA_TOKEN, &FA, sizeof FA}};
  int hidden = 1, vendor = 0;
  CK_RV rv;

  init_plain();
  s = open_session(1);
  MUST(F->C_GetMechanismList(first_slot(), mechs, &nm));
  for (i = 0; i < nm; i++) {
    if (mechs[i] == CKM_AES_KEY_WRAP_PAD || mechs[i] == CKM_AES_ECB || mechs[i] == CKM_AES_KEY_GEN)
      hidden = 0;
    vendor |= mechs[i] == VENDOR_KWP;
  }
  check(hidden && vendor, "hide: list without 0x210A/0x1081/0x1080, with alias", "%d %d", hidden,
        vendor);
  rv = F->C_GetMechanismInfo(first_slot(), CKM_AES_KEY_WRAP_PAD, &mi);
  check(rv == CKR_MECHANISM_INVALID, "hide: C_GetMechanismInfo", "rv 0x%lx", (unsigned long)rv);
  rv = F->C_GetMechanismInfo(first_slot(), VENDOR_KWP, &mi);
  check(rv == CKR_OK && (mi.flags & CKF_WRAP), "alias: C_GetMechanismInfo has 0x210A's info",
        "rv 0x%lx", (unsigned long)rv);
  rand_bytes(wv, 32, 5);
  rand_bytes(kv, 32, 6);
  w = create_aes(s, wv, 32, CK_TRUE, CK_FALSE);
  k = create_aes(s, kv, 32, CK_TRUE, CK_TRUE);
  len = sizeof out;
  rv = F->C_WrapKey(s, &pad, w, k, out, &len);
  check(rv == CKR_MECHANISM_INVALID, "hide: C_WrapKey", "rv 0x%lx", (unsigned long)rv);
  rv = F->C_UnwrapKey(s, &pad, w, out, 40, gt, 2, &h);
  check(rv == CKR_MECHANISM_INVALID, "hide: C_UnwrapKey", "rv 0x%lx", (unsigned long)rv);
  rv = F->C_EncryptInit(s, &ecb, k);
  check(rv == CKR_MECHANISM_INVALID, "hide: C_EncryptInit", "rv 0x%lx", (unsigned long)rv);
  rv = F->C_GenerateKey(s, &gen, gt, 2, &h);
  check(rv == CKR_MECHANISM_INVALID, "hide: C_GenerateKey", "rv 0x%lx", (unsigned long)rv);
  len = sizeof out;
  rv = F->C_WrapKey(s, &vend, w, k, out, &len);
  sw_wrap(1, 1, wv, 32, kv, 32, expect, &elen);
  check(rv == CKR_OK && len == elen && memcmp(out, expect, elen) == 0,
        "alias: 0x80000171 wraps as RFC 5649 while 0x210A is hidden", "rv 0x%lx",
        (unsigned long)rv);
  MUST(F->C_DestroyObject(s, w));
  MUST(F->C_DestroyObject(s, k));
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* ---- init-args (run with KEYPORT_QUIRKS=init-args=configdir=/tmp/smoke-nssdb) ------------- */

static void test_init_args(void) {
  char right[] = "configdir=/tmp/smoke-nssdb", wrong[] = "configdir=/tmp/other";
  CK_C_INITIALIZE_ARGS a;
  CK_INFO info;
  CK_RV rv;
  CK_ULONG n = 0;
  memset(&a, 0, sizeof a);
  rv = F->C_Initialize(NULL);
  check(rv == CKR_ARGUMENTS_BAD, "init-args: C_Initialize(NULL) refused", "rv 0x%lx",
        (unsigned long)rv);
  a.flags = CKF_OS_LOCKING_OK;
  rv = F->C_Initialize(&a);
  check(rv == CKR_ARGUMENTS_BAD, "init-args: pReserved NULL refused", "rv 0x%lx",
        (unsigned long)rv);
  a.pReserved = wrong;
  rv = F->C_Initialize(&a);
  check(rv == CKR_ARGUMENTS_BAD, "init-args: wrong string refused", "rv 0x%lx", (unsigned long)rv);
  a.pReserved = right;
  rv = F->C_Initialize(&a);
  check(rv == CKR_OK, "init-args: right string accepted", "rv 0x%lx", (unsigned long)rv);
  if (rv != CKR_OK)
    return;
  check(F->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n >= 1, "init-args: slots visible",
        "n %lu", (unsigned long)n);
  MUST(F->C_GetInfo(&info));
  check(memcmp(info.libraryDescription, "keyport quirk module ", 21) == 0 &&
            memcmp(info.manufacturerID, "keyport tests ", 14) == 0 &&
            info.libraryVersion.major == 0 && info.libraryVersion.minor == 1,
        "C_GetInfo names the quirk module", "%.32s", (char*)info.libraryDescription);
  MUST(F->C_Finalize(NULL));
}

/* ---- no-batch / ulong-exact ---------------------------------------------------------------- */

static void test_no_batch(void) {
  CK_SESSION_HANDLE s;
  CK_OBJECT_HANDLE k;
  unsigned char kv[32];
  CK_OBJECT_CLASS cls = 0;
  CK_KEY_TYPE kt = 0;
  CK_ATTRIBUTE two[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}};
  CK_RV rv;
  init_plain();
  s = open_session(1);
  rand_bytes(kv, 32, 7);
  k = create_aes(s, kv, 32, CK_TRUE, CK_TRUE);
  rv = F->C_GetAttributeValue(s, k, two, 2);
  check(rv == CKR_ATTRIBUTE_TYPE_INVALID && two[0].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
            two[1].ulValueLen == CK_UNAVAILABLE_INFORMATION,
        "no-batch: two attributes refused", "rv 0x%lx", (unsigned long)rv);
  two[0].ulValueLen = sizeof cls;
  rv = F->C_GetAttributeValue(s, k, two, 1);
  check(rv == CKR_OK && cls == CKO_SECRET_KEY, "no-batch: single attribute forwarded", "rv 0x%lx",
        (unsigned long)rv);
  MUST(F->C_DestroyObject(s, k));
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

static void test_ulong_exact(void) {
  CK_SESSION_HANDLE s;
  CK_OBJECT_HANDLE k;
  unsigned char kv[32], small[4], big[16];
  char label[64];
  CK_ULONG cls = 0;
  CK_ATTRIBUTE mix[] = {{CKA_CLASS, small, sizeof small},
                        {CKA_LABEL, label, sizeof label},
                        {CKA_VALUE_LEN, big, sizeof big}};
  CK_ATTRIBUTE ok1 = {CKA_CLASS, &cls, sizeof cls}, q = {CKA_KEY_TYPE, NULL, 0};
  CK_RV rv;
  char lv[] = "smoke-label";
  CK_ATTRIBUTE setl = {CKA_LABEL, lv, sizeof lv - 1};
  init_plain();
  s = open_session(1);
  rand_bytes(kv, 32, 7);
  k = create_aes(s, kv, 32, CK_TRUE, CK_TRUE);
  MUST(F->C_SetAttributeValue(s, k, &setl, 1));
  rv = F->C_GetAttributeValue(s, k, mix, 3);
  check(rv == CKR_ATTRIBUTE_TYPE_INVALID && mix[0].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
            mix[2].ulValueLen == CK_UNAVAILABLE_INFORMATION && mix[1].ulValueLen == sizeof lv - 1 &&
            memcmp(label, lv, sizeof lv - 1) == 0,
        "ulong-exact: short/long CK_ULONG buffers refused, label still filled",
        "rv 0x%lx lens %lu %lu %lu", (unsigned long)rv, (unsigned long)mix[0].ulValueLen,
        (unsigned long)mix[1].ulValueLen, (unsigned long)mix[2].ulValueLen);
  rv = F->C_GetAttributeValue(s, k, &ok1, 1);
  check(rv == CKR_OK && cls == CKO_SECRET_KEY, "ulong-exact: exact size accepted", "rv 0x%lx",
        (unsigned long)rv);
  rv = F->C_GetAttributeValue(s, k, &q, 1);
  check(rv == CKR_OK && q.ulValueLen == sizeof(CK_ULONG), "ulong-exact: length query accepted",
        "rv 0x%lx", (unsigned long)rv);
  MUST(F->C_DestroyObject(s, k));
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* ---- no-login / pin-pad ------------------------------------------------------------------- */

static void* thread_find(void* arg) {
  CK_SESSION_HANDLE s = open_session(0);
  *(CK_ULONG*)arg = count_private(s);
  F->C_CloseSession(s);
  return NULL;
}

static void test_no_login(void) {
  CK_TOKEN_INFO ti;
  CK_SESSION_HANDLE s;
  CK_RV rv;
  pthread_t th[4];
  CK_ULONG found[4], i, ok = 1;
  init_plain();
  MUST(F->C_GetTokenInfo(first_slot(), &ti));
  check(!(ti.flags & CKF_LOGIN_REQUIRED) && (ti.flags & CKF_USER_PIN_INITIALIZED),
        "no-login: token flags", "flags 0x%lx", (unsigned long)ti.flags);
  s = open_session(0);
  check(count_private(s) == 1, "no-login: private object visible without a PIN", "not found");
  rv = F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
  check(rv == CKR_USER_ALREADY_LOGGED_IN, "no-login: C_Login answers already logged in", "rv 0x%lx",
        (unsigned long)rv);
  MUST(F->C_CloseSession(s));
  for (i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, thread_find, &found[i]);
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ok &= found[i] == 1;
  }
  check(ok, "no-login: 4 threads see the private object (re-login after last close)", "failed");
  s = open_session(0);
  MUST(F->C_CloseAllSessions(first_slot()));
  s = open_session(0);
  check(count_private(s) == 1, "no-login: after C_CloseAllSessions", "not found");
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

static void test_pin_pad(void) {
  CK_TOKEN_INFO ti;
  CK_SESSION_HANDLE s;
  CK_RV rv;
  init_plain();
  MUST(F->C_GetTokenInfo(first_slot(), &ti));
  check((ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) && (ti.flags & CKF_LOGIN_REQUIRED),
        "pin-pad: token flags", "flags 0x%lx", (unsigned long)ti.flags);
  s = open_session(0);
  check(count_private(s) == 0, "pin-pad: private object hidden before login", "visible");
  rv = F->C_Login(s, CKU_USER, NULL, 0);
  check(rv == CKR_OK, "pin-pad: C_Login(NULL, 0)", "rv 0x%lx", (unsigned long)rv);
  check(count_private(s) == 1, "pin-pad: private object visible after PIN-pad login", "not found");
  MUST(F->C_Logout(s));
  rv = F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4);
  check(rv == CKR_PIN_INCORRECT, "pin-pad: explicit PIN forwarded", "rv 0x%lx", (unsigned long)rv);
  MUST(F->C_CloseSession(s));
  MUST(F->C_Finalize(NULL));
}

/* ---- nul-padded / plain ------------------------------------------------------------------- */

static int nul_tail(const unsigned char* p, size_t n) {
  size_t i = n;
  while (i > 0 && p[i - 1] == 0)
    i--;
  return i < n && (i == 0 || p[i - 1] != ' ');
}

static void test_nul_padded(void) {
  CK_TOKEN_INFO ti;
  CK_SLOT_INFO si;
  init_plain();
  MUST(F->C_GetTokenInfo(first_slot(), &ti));
  MUST(F->C_GetSlotInfo(first_slot(), &si));
  check(memcmp(ti.label, "quirk\0", 6) == 0 && nul_tail(ti.label, 32) &&
            nul_tail(ti.manufacturerID, 32) && nul_tail(ti.model, 16),
        "nul-padded: token info", "label '%.32s'", (char*)ti.label);
  check(nul_tail(si.slotDescription, 64) && nul_tail(si.manufacturerID, 32),
        "nul-padded: slot info", "failed");
  MUST(F->C_Finalize(NULL));
}

static void test_plain(void) {
  CK_TOKEN_INFO ti;
  CK_INFO info;
  init_plain();
  MUST(F->C_GetTokenInfo(first_slot(), &ti));
  MUST(F->C_GetInfo(&info));
  check((ti.flags & CKF_LOGIN_REQUIRED) && !(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) &&
            memcmp(ti.label, "quirk ", 6) == 0 && memcmp(ti.manufacturerID, "SoftHSM", 7) == 0,
        "plain: token info is SoftHSM's", "flags 0x%lx", (unsigned long)ti.flags);
  check(F->C_Initialize(NULL) == CKR_CRYPTOKI_ALREADY_INITIALIZED, "plain: double C_Initialize",
        "failed");
  MUST(F->C_Finalize(NULL));
  check(F->C_GetInfo(&info) == CKR_CRYPTOKI_NOT_INITIALIZED,
        "plain: not initialised after C_Finalize", "failed");
}

int main(int argc, char** argv) {
  void* dl;
  CK_C_GetFunctionList gfl;
  void* sym;
  const char* t;
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODULE TEST\n", argv[0]);
    return 2;
  }
  pin = getenv("SMOKE_PIN");
  if (!pin)
    pin = "5678";
  dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  sym = dlsym(dl, "C_GetFunctionList");
  memcpy(&gfl, &sym, sizeof gfl);
  MUST(gfl(&F));
  t = argv[2];
  if (!strcmp(t, "setup"))
    test_setup();
  else if (!strcmp(t, "rsa-aes"))
    test_rsa_aes();
  else if (!strcmp(t, "rsa-aes-unwrap"))
    test_rsa_aes_unwrap();
  else if (!strcmp(t, "pad-pkcs7"))
    test_pad_pkcs7();
  else if (!strcmp(t, "hide"))
    test_hide();
  else if (!strcmp(t, "init-args"))
    test_init_args();
  else if (!strcmp(t, "no-batch"))
    test_no_batch();
  else if (!strcmp(t, "ulong-exact"))
    test_ulong_exact();
  else if (!strcmp(t, "no-login"))
    test_no_login();
  else if (!strcmp(t, "pin-pad"))
    test_pin_pad();
  else if (!strcmp(t, "nul-padded"))
    test_nul_padded();
  else if (!strcmp(t, "plain"))
    test_plain();
  else {
    fprintf(stderr, "unknown test %s\n", t);
    return 2;
  }
  dlclose(dl);
  printf("smoke %s: %d passed, %d failed\n", t, passes, failures);
  return failures ? 1 : 0;
}
