/* SPDX-License-Identifier: Apache-2.0
 *
 * keyport quirk module: a PKCS#11 v2.40 *test* module that proxies another module (SoftHSM 2.6.1
 * by default) and adds behaviours ("quirks") chosen by environment variables, so that keyport's
 * tests can meet token behaviours that no Debian 12 module has.  See README.md beside this file.
 *
 *   KEYPORT_QUIRK_TARGET  module to proxy (default /usr/lib/softhsm/libsofthsm2.so)
 *   KEYPORT_QUIRKS        comma-separated quirks, read at every C_Initialize
 *   KEYPORT_QUIRK_PIN     user PIN used by no-login and by pin-pad's C_Login(NULL, 0)
 *   KEYPORT_QUIRK_SO_PIN  SO PIN used by pin-pad's C_Login(CKU_SO, NULL, 0) (optional)
 *
 * WARNING: TEST MODULE ONLY.  The native-rsa-aes and pad-pkcs7 quirks move key bytes through this
 * library's own memory (temporary non-sensitive keys, software key wrapping).  Never load it in
 * front of a token that holds real keys.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <p11-kit/pkcs11.h>

/* ---- Definitions missing from p11-kit's v2.40 header ------------------------------------------
 */

/* OASIS PKCS#11 v3.0 "Current Mechanisms" 2.1.21 (CKM_RSA_AES_KEY_WRAP); p11-kit 0.24 already has
 * the code but not the parameter structure. */
#ifndef CKM_RSA_AES_KEY_WRAP
#define CKM_RSA_AES_KEY_WRAP 0x00001054UL
#endif
#ifndef CK_RSA_AES_KEY_WRAP_PARAMS_DEFINED
#define CK_RSA_AES_KEY_WRAP_PARAMS_DEFINED
typedef struct CK_RSA_AES_KEY_WRAP_PARAMS {
  CK_ULONG ulAESKeyBits;
  CK_RSA_PKCS_OAEP_PARAMS_PTR pOAEPParams;
} CK_RSA_AES_KEY_WRAP_PARAMS;
typedef CK_RSA_AES_KEY_WRAP_PARAMS* CK_RSA_AES_KEY_WRAP_PARAMS_PTR;
#endif
/* OASIS PKCS#11 v2.40 / v3.0 "Current Mechanisms" 2.14 (AES key wrap). */
#ifndef CKM_AES_KEY_WRAP
#define CKM_AES_KEY_WRAP 0x00002109UL
#endif
#ifndef CKM_AES_KEY_WRAP_PAD
#define CKM_AES_KEY_WRAP_PAD 0x0000210AUL
#endif
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL
#endif

#define QEXPORT __attribute__((visibility("default")))
#define DEFAULT_TARGET "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_CODES 64

/* ---- Configuration ------------------------------------------------------------------------------
 */

enum {
  Q_NATIVE_RSA_AES = 1u << 0,
  Q_PAD_PKCS7 = 1u << 1,
  Q_INIT_ARGS = 1u << 2,
  Q_NO_BATCH = 1u << 3,
  Q_ULONG_EXACT = 1u << 4,
  Q_NO_LOGIN = 1u << 5,
  Q_PIN_PAD = 1u << 6,
  Q_NUL_PADDED = 1u << 7
};

struct alias {
  CK_MECHANISM_TYPE vendor;
  CK_MECHANISM_TYPE std;
};

struct config {
  unsigned flags;
  CK_MECHANISM_TYPE hidden[MAX_CODES];
  size_t nhidden;
  struct alias aliases[MAX_CODES];
  size_t naliases;
  char* init_args; /* init-args=STRING */
  char* pin;       /* KEYPORT_QUIRK_PIN */
  char* so_pin;    /* KEYPORT_QUIRK_SO_PIN */
};

/* One cached C_WrapKey result per session, so that a length query followed by the real call does
 * the (randomised) composite wrap once and returns the same bytes. */
struct wrap_cache {
  struct wrap_cache* next;
  CK_SESSION_HANDLE session;
  unsigned char* key; /* fingerprint of mechanism, parameters and handles */
  size_t keylen;
  unsigned char* data;
  size_t len;
};

static struct {
  int initialized;
  CK_FUNCTION_LIST_PTR t; /* the proxied module */
  void* dl;
  char* dl_path;
  struct config cfg;
  struct wrap_cache* cache;
} g;

/* Guards g.cache and serialises the automatic login of no-login. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void free_str(char** s) {
  if (*s) {
    OPENSSL_cleanse(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

static void config_free(struct config* c) {
  free_str(&c->init_args);
  free_str(&c->pin);
  free_str(&c->so_pin);
  memset(c, 0, sizeof *c);
}

static int parse_code(const char* s, CK_MECHANISM_TYPE* out) {
  char* end = NULL;
  unsigned long v;
  if (!s || !*s || *s == '-' || *s == '+')
    return 0;
  v = strtoul(s, &end, 0);
  if (!end || *end)
    return 0;
  *out = (CK_MECHANISM_TYPE)v;
  return 1;
}

static int parse_item(struct config* c, char* item) {
  char* eq = strchr(item, '=');
  char* val = NULL;
  static const struct {
    const char* name;
    unsigned flag;
  } simple[] = {
      {"native-rsa-aes", Q_NATIVE_RSA_AES}, {"pad-pkcs7", Q_PAD_PKCS7}, {"no-batch", Q_NO_BATCH},
      {"ulong-exact", Q_ULONG_EXACT},       {"no-login", Q_NO_LOGIN},   {"pin-pad", Q_PIN_PAD},
      {"nul-padded", Q_NUL_PADDED}};
  size_t i;
  if (eq) {
    *eq = '\0';
    val = eq + 1;
  }
  for (i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    if (strcmp(item, simple[i].name) == 0) {
      if (val) {
        fprintf(stderr, "keyport quirk module: quirk '%s' takes no value\n", item);
        return 0;
      }
      c->flags |= simple[i].flag;
      return 1;
    }
  }
  if (strcmp(item, "hide") == 0 && val) {
    char* p = val;
    for (;;) {
      char* colon = strchr(p, ':');
      CK_MECHANISM_TYPE m;
      if (colon)
        *colon = '\0';
      if (!parse_code(p, &m) || c->nhidden >= MAX_CODES) {
        fprintf(stderr, "keyport quirk module: bad mechanism code '%s' in quirk 'hide'\n", p);
        return 0;
      }
      c->hidden[c->nhidden++] = m;
      if (!colon)
        break;
      p = colon + 1;
    }
    return 1;
  }
  if (strcmp(item, "alias") == 0 && val) {
    char* colon = strchr(val, ':');
    struct alias a;
    if (!colon || c->naliases >= MAX_CODES) {
      fprintf(stderr, "keyport quirk module: quirk 'alias' wants alias=0xVENDOR:0xSTD\n");
      return 0;
    }
    *colon = '\0';
    if (!parse_code(val, &a.vendor) || !parse_code(colon + 1, &a.std)) {
      fprintf(stderr, "keyport quirk module: bad mechanism code in quirk 'alias'\n");
      return 0;
    }
    c->aliases[c->naliases++] = a;
    return 1;
  }
  if (strcmp(item, "init-args") == 0 && val) {
    free_str(&c->init_args);
    c->init_args = strdup(val);
    if (!c->init_args)
      return 0;
    c->flags |= Q_INIT_ARGS;
    return 1;
  }
  fprintf(stderr, "keyport quirk module: unknown quirk '%s' in KEYPORT_QUIRKS\n", item);
  return 0;
}

/* Reads the environment into *c. Returns CKR_OK, CKR_ARGUMENTS_BAD or CKR_HOST_MEMORY. */
static CK_RV parse_config(struct config* c) {
  const char* env = getenv("KEYPORT_QUIRKS");
  const char* pin = getenv("KEYPORT_QUIRK_PIN");
  const char* so_pin = getenv("KEYPORT_QUIRK_SO_PIN");
  memset(c, 0, sizeof *c);
  if (env && *env) {
    char* copy = strdup(env);
    char* p;
    int ok = 1;
    if (!copy)
      return CKR_HOST_MEMORY;
    p = copy;
    while (ok) {
      char* comma = strchr(p, ',');
      if (comma)
        *comma = '\0';
      if (*p)
        ok = parse_item(c, p);
      if (!comma)
        break;
      p = comma + 1;
    }
    free(copy);
    if (!ok) {
      config_free(c);
      return CKR_ARGUMENTS_BAD;
    }
  }
  if (pin && !(c->pin = strdup(pin))) {
    config_free(c);
    return CKR_HOST_MEMORY;
  }
  if (so_pin && !(c->so_pin = strdup(so_pin))) {
    config_free(c);
    return CKR_HOST_MEMORY;
  }
  if ((c->flags & Q_NO_LOGIN) && !c->pin) {
    fprintf(stderr, "keyport quirk module: quirk 'no-login' needs KEYPORT_QUIRK_PIN\n");
    config_free(c);
    return CKR_ARGUMENTS_BAD;
  }
  if (c->flags & Q_PAD_PKCS7) { /* the PKCS#11 3.0 RFC 5649 code disappears */
    if (c->nhidden < MAX_CODES)
      c->hidden[c->nhidden++] = CKM_AES_KEY_WRAP_KWP;
  }
  return CKR_OK;
}

static int is_hidden(CK_MECHANISM_TYPE m) {
  size_t i;
  for (i = 0; i < g.cfg.nhidden; i++)
    if (g.cfg.hidden[i] == m)
      return 1;
  return 0;
}

static const struct alias* find_alias(CK_MECHANISM_TYPE m) {
  size_t i;
  for (i = 0; i < g.cfg.naliases; i++)
    if (g.cfg.aliases[i].vendor == m)
      return &g.cfg.aliases[i];
  return NULL;
}

static int has(unsigned flag) {
  return (g.cfg.flags & flag) != 0;
}

/* Hidden codes are refused; vendor aliases become their standard code, forwarded straight to the
 * target (aliases bypass the other quirks: they name the target module's own mechanisms). */
static CK_RV map_mech(CK_MECHANISM_PTR in, CK_MECHANISM* tmp, CK_MECHANISM_PTR* out) {
  const struct alias* a;
  *out = in;
  if (!in)
    return CKR_OK;
  if (is_hidden(in->mechanism))
    return CKR_MECHANISM_INVALID;
  a = find_alias(in->mechanism);
  if (a) {
    *tmp = *in;
    tmp->mechanism = a->std;
    *out = tmp;
  }
  return CKR_OK;
}

/* ---- Wrap cache ------------------------------------------------------------------------------ */

static void cache_entry_free(struct wrap_cache* e) {
  if (!e)
    return;
  OPENSSL_cleanse(e->data, e->len);
  free(e->data);
  free(e->key);
  free(e);
}

/* Removes and returns the session's entry if its fingerprint matches; drops it otherwise. */
static struct wrap_cache* cache_take(CK_SESSION_HANDLE s, const unsigned char* key, size_t keylen) {
  struct wrap_cache **pp, *e = NULL;
  pthread_mutex_lock(&g_lock);
  for (pp = &g.cache; *pp; pp = &(*pp)->next) {
    if ((*pp)->session == s) {
      e = *pp;
      *pp = e->next;
      break;
    }
  }
  pthread_mutex_unlock(&g_lock);
  if (e && (e->keylen != keylen || memcmp(e->key, key, keylen) != 0)) {
    cache_entry_free(e);
    e = NULL;
  }
  return e;
}

static void cache_put(struct wrap_cache* e) {
  struct wrap_cache** pp;
  pthread_mutex_lock(&g_lock);
  for (pp = &g.cache; *pp; pp = &(*pp)->next) {
    if ((*pp)->session == e->session) {
      struct wrap_cache* old = *pp;
      *pp = old->next;
      cache_entry_free(old);
      break;
    }
  }
  e->next = g.cache;
  g.cache = e;
  pthread_mutex_unlock(&g_lock);
}

/* all != 0: every entry; otherwise only session s. */
static void cache_drop(int all, CK_SESSION_HANDLE s) {
  struct wrap_cache** pp = &g.cache;
  pthread_mutex_lock(&g_lock);
  while (*pp) {
    if (all || (*pp)->session == s) {
      struct wrap_cache* e = *pp;
      *pp = e->next;
      cache_entry_free(e);
    } else {
      pp = &(*pp)->next;
    }
  }
  pthread_mutex_unlock(&g_lock);
}

struct buf {
  unsigned char* p;
  size_t len, cap;
  int fail;
};

static void buf_add(struct buf* b, const void* data, size_t n) {
  if (b->fail || n == 0)
    return;
  if (b->len + n > b->cap) {
    size_t cap = (b->len + n) * 2 + 32;
    unsigned char* p = realloc(b->p, cap);
    if (!p) {
      b->fail = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void buf_ulong(struct buf* b, CK_ULONG v) {
  buf_add(b, &v, sizeof v);
}

/* A fingerprint of (mechanism, parameters, wrapping key, key) for the wrap cache. */
static int fingerprint(CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k,
                       unsigned char** out, size_t* outlen) {
  struct buf b = {NULL, 0, 0, 0};
  buf_ulong(&b, m->mechanism);
  buf_ulong(&b, w);
  buf_ulong(&b, k);
  buf_ulong(&b, m->ulParameterLen);
  if (m->mechanism == CKM_RSA_AES_KEY_WRAP && m->pParameter &&
      m->ulParameterLen == sizeof(CK_RSA_AES_KEY_WRAP_PARAMS)) {
    const CK_RSA_AES_KEY_WRAP_PARAMS* p = m->pParameter;
    buf_ulong(&b, p->ulAESKeyBits);
    if (p->pOAEPParams) {
      buf_ulong(&b, p->pOAEPParams->hashAlg);
      buf_ulong(&b, p->pOAEPParams->mgf);
      buf_ulong(&b, p->pOAEPParams->source);
      buf_ulong(&b, p->pOAEPParams->ulSourceDataLen);
      if (p->pOAEPParams->pSourceData)
        buf_add(&b, p->pOAEPParams->pSourceData, p->pOAEPParams->ulSourceDataLen);
    }
  } else if (m->pParameter) {
    buf_add(&b, m->pParameter, m->ulParameterLen);
  }
  if (b.fail) {
    free(b.p);
    return 0;
  }
  *out = b.p;
  *outlen = b.len;
  return 1;
}

/* ---- Helpers over the target module -------------------------------------------------------- */

static CK_BBOOL session_is_user(CK_SESSION_HANDLE s) {
  CK_SESSION_INFO si;
  if (g.t->C_GetSessionInfo(s, &si) != CKR_OK)
    return CK_FALSE;
  return (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS) ? CK_TRUE
                                                                                  : CK_FALSE;
}

static void destroy(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE* h) {
  if (*h != CK_INVALID_HANDLE) {
    g.t->C_DestroyObject(s, *h);
    *h = CK_INVALID_HANDLE;
  }
}

/* Reads one attribute into a fresh buffer (free with free_secret). */
static CK_RV get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                      unsigned char** out, size_t* outlen) {
  CK_ATTRIBUTE a = {type, NULL, 0};
  CK_RV rv = g.t->C_GetAttributeValue(s, o, &a, 1);
  if (rv != CKR_OK)
    return rv;
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
    return CKR_ATTRIBUTE_TYPE_INVALID;
  a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
  if (!a.pValue)
    return CKR_HOST_MEMORY;
  rv = g.t->C_GetAttributeValue(s, o, &a, 1);
  if (rv != CKR_OK) {
    OPENSSL_cleanse(a.pValue, a.ulValueLen ? a.ulValueLen : 1);
    free(a.pValue);
    return rv;
  }
  *out = a.pValue;
  *outlen = a.ulValueLen;
  return CKR_OK;
}

static void free_secret(unsigned char** p, size_t len) {
  if (*p) {
    OPENSSL_cleanse(*p, len);
    free(*p);
    *p = NULL;
  }
}

/* Underlying C_WrapKey into a fresh buffer. */
static CK_RV wrap_alloc(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
                        CK_OBJECT_HANDLE k, unsigned char** out, size_t* outlen) {
  CK_ULONG len = 0;
  unsigned char* p;
  CK_RV rv = g.t->C_WrapKey(s, m, w, k, NULL, &len);
  if (rv != CKR_OK)
    return rv;
  p = malloc(len ? len : 1);
  if (!p)
    return CKR_HOST_MEMORY;
  rv = g.t->C_WrapKey(s, m, w, k, p, &len);
  if (rv != CKR_OK) {
    free(p);
    return rv;
  }
  *out = p;
  *outlen = len;
  return CKR_OK;
}

/* A temporary session AES key. */
static CK_RV gen_temp_aes(CK_SESSION_HANDLE s, CK_ULONG bytes, CK_BBOOL sensitive,
                          CK_OBJECT_HANDLE* h) {
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE kt = CKK_AES;
  CK_BBOOL f = CK_FALSE, t = CK_TRUE, priv = session_is_user(s);
  CK_BBOOL extractable = CK_TRUE;
  CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
  char label[] = "keyport-quirk-temp";
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_KEY_TYPE, &kt, sizeof kt},
      {CKA_VALUE_LEN, &bytes, sizeof bytes},
      {CKA_TOKEN, &f, sizeof f},
      {CKA_PRIVATE, &priv, sizeof priv},
      {CKA_SENSITIVE, &sensitive, sizeof sensitive},
      {CKA_EXTRACTABLE, &extractable, sizeof extractable},
      {CKA_WRAP, &t, sizeof t},
      {CKA_UNWRAP, &t, sizeof t},
      {CKA_ENCRYPT, &f, sizeof f},
      {CKA_DECRYPT, &f, sizeof f},
      {CKA_LABEL, label, sizeof label - 1},
  };
  *h = CK_INVALID_HANDLE;
  return g.t->C_GenerateKey(s, &m, tmpl, sizeof tmpl / sizeof tmpl[0], h);
}

/* Software AES key wrap (RFC 3394 when pad == 0, RFC 5649 when pad != 0) with a 256-bit KEK.
 * out must hold inlen + 16 bytes. Returns 1 on success. */
static int sw_wrap(int enc, int pad, const unsigned char* kek, const unsigned char* in,
                   size_t inlen, unsigned char* out, size_t* outlen) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int l1 = 0, l2 = 0, ok = 0;
  if (!ctx || inlen > INT32_MAX)
    goto done;
  EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex(ctx, pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap(), NULL, kek, NULL,
                        enc) != 1)
    goto done;
  if (EVP_CipherUpdate(ctx, out, &l1, in, (int)inlen) != 1 || l1 < 0)
    goto done;
  if (EVP_CipherFinal_ex(ctx, out + l1, &l2) != 1 || l2 < 0)
    goto done;
  *outlen = (size_t)l1 + (size_t)l2;
  ok = 1;
done:
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

/* ---- native-rsa-aes ----------------------------------------------------------------------------
 */

static CK_RV rsa_aes_params(CK_MECHANISM_PTR m, const CK_RSA_AES_KEY_WRAP_PARAMS** out) {
  const CK_RSA_AES_KEY_WRAP_PARAMS* p;
  if (!m->pParameter || m->ulParameterLen != sizeof(CK_RSA_AES_KEY_WRAP_PARAMS))
    return CKR_MECHANISM_PARAM_INVALID;
  p = m->pParameter;
  if (!p->pOAEPParams ||
      (p->ulAESKeyBits != 128 && p->ulAESKeyBits != 192 && p->ulAESKeyBits != 256))
    return CKR_MECHANISM_PARAM_INVALID;
  *out = p;
  return CKR_OK;
}

/* PKCS#11 3.0 CKM_RSA_AES_KEY_WRAP: OAEP(ephemeral AES key) || KWP(target under ephemeral). */
static CK_RV rsa_aes_wrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
                          CK_OBJECT_HANDLE k, unsigned char** out, size_t* outlen) {
  const CK_RSA_AES_KEY_WRAP_PARAMS* p;
  CK_OBJECT_HANDLE eph = CK_INVALID_HANDLE;
  CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
  CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, NULL, sizeof(CK_RSA_PKCS_OAEP_PARAMS)};
  unsigned char *a = NULL, *b = NULL, *res = NULL;
  size_t alen = 0, blen = 0;
  CK_RV rv = rsa_aes_params(m, &p);
  if (rv != CKR_OK)
    return rv;
  oaep.pParameter = p->pOAEPParams;
  rv = gen_temp_aes(s, p->ulAESKeyBits / 8, CK_TRUE, &eph);
  if (rv != CKR_OK)
    return rv;
  rv = wrap_alloc(s, &kwp, eph, k, &b, &blen);
  if (rv == CKR_OK)
    rv = wrap_alloc(s, &oaep, w, eph, &a, &alen);
  destroy(s, &eph);
  if (rv == CKR_OK) {
    res = malloc(alen + blen);
    if (!res) {
      rv = CKR_HOST_MEMORY;
    } else {
      memcpy(res, a, alen);
      memcpy(res + alen, b, blen);
      *out = res;
      *outlen = alen + blen;
    }
  }
  free(a);
  free(b);
  return rv;
}

/* Length in bytes of the modulus of an RSA key. */
static CK_RV rsa_modulus_len(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, size_t* len) {
  unsigned char* mod = NULL;
  size_t mlen = 0, i = 0;
  CK_ULONG bits = 0;
  CK_ATTRIBUTE a = {CKA_MODULUS_BITS, &bits, sizeof bits};
  CK_RV rv = get_attr(s, k, CKA_MODULUS, &mod, &mlen);
  if (rv == CKR_OK) {
    while (i < mlen && mod[i] == 0)
      i++;
    free(mod);
    if (mlen - i > 0) {
      *len = mlen - i;
      return CKR_OK;
    }
  } else if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_SESSION_HANDLE_INVALID) {
    return rv == CKR_OBJECT_HANDLE_INVALID ? CKR_UNWRAPPING_KEY_HANDLE_INVALID : rv;
  }
  rv = g.t->C_GetAttributeValue(s, k, &a, 1);
  if (rv != CKR_OK || bits == 0)
    return CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
  *len = (bits + 7) / 8;
  return CKR_OK;
}

static CK_RV rsa_aes_unwrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u,
                            CK_BYTE_PTR data, CK_ULONG len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE_PTR ph) {
  const CK_RSA_AES_KEY_WRAP_PARAMS* p;
  CK_OBJECT_HANDLE eph = CK_INVALID_HANDLE;
  CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
  CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, NULL, sizeof(CK_RSA_PKCS_OAEP_PARAMS)};
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE kt = CKK_AES;
  CK_BBOOL f = CK_FALSE, t = CK_TRUE, priv;
  CK_ULONG vlen = 0;
  CK_ATTRIBUTE vl = {CKA_VALUE_LEN, &vlen, sizeof vlen};
  size_t modlen = 0;
  CK_RV rv;
  if (!ph || (!data && len))
    return CKR_ARGUMENTS_BAD;
  rv = rsa_aes_params(m, &p);
  if (rv != CKR_OK)
    return rv;
  oaep.pParameter = p->pOAEPParams;
  rv = rsa_modulus_len(s, u, &modlen);
  if (rv != CKR_OK)
    return rv;
  if (len <= modlen)
    return CKR_WRAPPED_KEY_LEN_RANGE;
  priv = session_is_user(s);
  {
    CK_ATTRIBUTE et[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &f, sizeof f},     {CKA_PRIVATE, &priv, sizeof priv},
        {CKA_SENSITIVE, &t, sizeof t}, {CKA_EXTRACTABLE, &f, sizeof f},
        {CKA_UNWRAP, &t, sizeof t},    {CKA_WRAP, &f, sizeof f},
        {CKA_ENCRYPT, &f, sizeof f},   {CKA_DECRYPT, &f, sizeof f},
    };
    rv = g.t->C_UnwrapKey(s, &oaep, u, data, (CK_ULONG)modlen, et, sizeof et / sizeof et[0], &eph);
  }
  if (rv != CKR_OK)
    return rv;
  /* SoftHSM 2.6.1 records CKA_VALUE_LEN 0 for unwrapped keys: check the size where it is known. */
  rv = g.t->C_GetAttributeValue(s, eph, &vl, 1);
  if (rv == CKR_OK && vlen != 0 && vlen != p->ulAESKeyBits / 8)
    rv = CKR_WRAPPED_KEY_INVALID;
  if (rv == CKR_OK)
    rv = g.t->C_UnwrapKey(s, &kwp, eph, data + modlen, len - (CK_ULONG)modlen, tmpl, n, ph);
  destroy(s, &eph);
  return rv;
}

/* ---- pad-pkcs7 (CKM_AES_KEY_WRAP_PAD as RFC 3394 over PKCS#7-padded data) ---------------------
 */

/* SoftHSM 2.6.1 zero-pads every payload to a multiple of 8 before RFC 5649 (WrapKeySym; keyport's
 * docs/quirks.md, softhsm-kwp-zero-padding). Returns the payload's real length: the DER length of
 * a private key's PKCS#8 encoding, or a secret key's CKA_VALUE_LEN, when only zeros follow it. */
static size_t payload_len(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, const unsigned char* p,
                          size_t len) {
  CK_OBJECT_CLASS cls = CKO_VENDOR_DEFINED;
  CK_ULONG vlen = 0;
  CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
  size_t real = len, i;
  if (g.t->C_GetAttributeValue(s, k, &a, 1) != CKR_OK)
    return len;
  if (cls == CKO_PRIVATE_KEY && len >= 2 && p[0] == 0x30) {
    if (p[1] < 0x80) {
      real = 2 + (size_t)p[1];
    } else {
      size_t n = p[1] & 0x7f, l = 0;
      if (n == 0 || n > 4 || len < 2 + n)
        return len;
      for (i = 0; i < n; i++)
        l = (l << 8) | p[2 + i];
      real = 2 + n + l;
    }
  } else if (cls == CKO_SECRET_KEY) {
    CK_ATTRIBUTE v = {CKA_VALUE_LEN, &vlen, sizeof vlen};
    if (g.t->C_GetAttributeValue(s, k, &v, 1) == CKR_OK && vlen > 0)
      real = vlen;
  }
  if (real == 0 || real > len)
    return len;
  for (i = real; i < len; i++)
    if (p[i] != 0)
      return len;
  return real;
}

/* The bytes the target module would wrap for key k (its RFC 5649 payload, less SoftHSM's zero
 * padding), recovered by wrapping k under a temporary non-sensitive AES-256 key and unwrapping in
 * software. */
static CK_RV key_bytes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, unsigned char** out,
                       size_t* outlen) {
  CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
  CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
  unsigned char *wrapped = NULL, *kek = NULL, *plain = NULL;
  size_t wlen = 0, keklen = 0, plen = 0;
  CK_RV rv = gen_temp_aes(s, 32, CK_FALSE, &tmp);
  if (rv != CKR_OK)
    return rv;
  rv = wrap_alloc(s, &kwp, tmp, k, &wrapped, &wlen);
  if (rv == CKR_OK)
    rv = get_attr(s, tmp, CKA_VALUE, &kek, &keklen);
  destroy(s, &tmp);
  if (rv == CKR_OK && keklen != 32)
    rv = CKR_GENERAL_ERROR;
  if (rv == CKR_OK) {
    plain = malloc(wlen + 16);
    if (!plain)
      rv = CKR_HOST_MEMORY;
    else if (!sw_wrap(0, 1, kek, wrapped, wlen, plain, &plen))
      rv = CKR_GENERAL_ERROR;
  }
  free_secret(&kek, keklen);
  free(wrapped);
  if (rv != CKR_OK) {
    free_secret(&plain, wlen + 16);
    return rv;
  }
  *out = plain;
  *outlen = payload_len(s, k, plain, plen);
  return CKR_OK;
}

static CK_RV pkcs7_wrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
                        CK_OBJECT_HANDLE k, unsigned char** out, size_t* outlen) {
  CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
  CK_OBJECT_HANDLE gs = CK_INVALID_HANDLE;
  unsigned char *plain = NULL, *padded = NULL;
  size_t plen = 0, padlen = 0, padcap = 0, n;
  CK_RV rv;
  if (m->pParameter || m->ulParameterLen) /* no IV support: the default IV only */
    return CKR_MECHANISM_PARAM_INVALID;
  rv = key_bytes(s, k, &plain, &plen);
  if (rv != CKR_OK)
    return rv;
  n = 8 - plen % 8; /* PKCS#7: always 1..8 bytes */
  padcap = plen + n;
  padded = malloc(padcap);
  if (!padded) {
    free_secret(&plain, plen);
    return CKR_HOST_MEMORY;
  }
  memcpy(padded, plain, plen);
  memset(padded + plen, (int)n, n);
  padlen = padcap;
  free_secret(&plain, plen);
  {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE, priv = session_is_user(s);
    char label[] = "keyport-quirk-temp";
    CK_ATTRIBUTE gt[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &f, sizeof f},     {CKA_PRIVATE, &priv, sizeof priv},
        {CKA_SENSITIVE, &t, sizeof t}, {CKA_EXTRACTABLE, &t, sizeof t},
        {CKA_VALUE, padded, padlen},   {CKA_LABEL, label, sizeof label - 1},
    };
    rv = g.t->C_CreateObject(s, gt, sizeof gt / sizeof gt[0], &gs);
  }
  free_secret(&padded, padcap);
  if (rv != CKR_OK)
    return rv;
  rv = wrap_alloc(s, &kw, w, gs, out, outlen);
  destroy(s, &gs);
  return rv;
}

static CK_RV pkcs7_unwrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u,
                          CK_BYTE_PTR data, CK_ULONG len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE_PTR ph) {
  CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
  CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
  CK_OBJECT_HANDLE gs = CK_INVALID_HANDLE, tmp = CK_INVALID_HANDLE;
  unsigned char *padded = NULL, *kek = NULL, *rewrapped = NULL;
  size_t padlen = 0, keklen = 0, plen = 0, rwlen = 0, i;
  unsigned char pad;
  CK_RV rv;
  if (!ph)
    return CKR_ARGUMENTS_BAD;
  if (m->pParameter || m->ulParameterLen)
    return CKR_MECHANISM_PARAM_INVALID;
  if (len < 24 || len % 8)
    return CKR_WRAPPED_KEY_LEN_RANGE;
  {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE, priv = session_is_user(s);
    char label[] = "keyport-quirk-temp";
    CK_ATTRIBUTE gt[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &f, sizeof f},
        {CKA_PRIVATE, &priv, sizeof priv},
        {CKA_SENSITIVE, &f, sizeof f},
        {CKA_EXTRACTABLE, &t, sizeof t},
        {CKA_LABEL, label, sizeof label - 1},
    };
    rv = g.t->C_UnwrapKey(s, &kw, u, data, len, gt, sizeof gt / sizeof gt[0], &gs);
  }
  if (rv != CKR_OK)
    return rv;
  rv = get_attr(s, gs, CKA_VALUE, &padded, &padlen);
  destroy(s, &gs);
  if (rv != CKR_OK)
    return rv;
  /* Strip and check the PKCS#7 padding (1..8 bytes, each equal to the count). */
  pad = padlen ? padded[padlen - 1] : 0;
  if (padlen == 0 || padlen % 8 || pad < 1 || pad > 8 || pad >= padlen)
    rv = CKR_WRAPPED_KEY_INVALID;
  for (i = 0; rv == CKR_OK && i < pad; i++)
    if (padded[padlen - 1 - i] != pad)
      rv = CKR_WRAPPED_KEY_INVALID;
  if (rv == CKR_OK) {
    plen = padlen - pad;
    /* Re-wrap the bytes with RFC 5649 under a temporary key and let the target module unwrap them
     * with the caller's template, so that the new object gets exactly the target's semantics. */
    rv = gen_temp_aes(s, 32, CK_FALSE, &tmp);
  }
  if (rv == CKR_OK)
    rv = get_attr(s, tmp, CKA_VALUE, &kek, &keklen);
  if (rv == CKR_OK && keklen != 32)
    rv = CKR_GENERAL_ERROR;
  if (rv == CKR_OK) {
    rewrapped = malloc(plen + 16);
    if (!rewrapped)
      rv = CKR_HOST_MEMORY;
    else if (!sw_wrap(1, 1, kek, padded, plen, rewrapped, &rwlen))
      rv = CKR_GENERAL_ERROR;
  }
  free_secret(&kek, keklen);
  free_secret(&padded, padlen);
  if (rv == CKR_OK)
    rv = g.t->C_UnwrapKey(s, &kwp, tmp, rewrapped, (CK_ULONG)rwlen, tmpl, n, ph);
  free(rewrapped);
  destroy(s, &tmp);
  return rv;
}

/* ---- Function list
 * ------------------------------------------------------------------------------- */

static CK_FUNCTION_LIST q_list;

#define NEED_INIT()                        \
  do {                                     \
    if (!g.initialized)                    \
      return CKR_CRYPTOKI_NOT_INITIALIZED; \
  } while (0)

static void space_pad(unsigned char* dst, size_t n, const char* src) {
  size_t l = strlen(src);
  memset(dst, ' ', n);
  memcpy(dst, src, l < n ? l : n);
}

static void nul_pad(unsigned char* p, size_t n) {
  while (n > 0 && p[n - 1] == ' ')
    p[--n] = '\0';
}

static CK_RV load_target(void) {
  const char* path = getenv("KEYPORT_QUIRK_TARGET");
  CK_C_GetFunctionList gfl;
  CK_FUNCTION_LIST_PTR list = NULL;
  CK_RV rv;
  if (!path || !*path)
    path = DEFAULT_TARGET;
  if (g.dl && g.dl_path && strcmp(g.dl_path, path) != 0) {
    dlclose(g.dl);
    g.dl = NULL;
    free(g.dl_path);
    g.dl_path = NULL;
  }
  if (!g.dl) {
    /* Kept loaded after C_Finalize (SoftHSM does not like being unloaded and loaded again). */
    g.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!g.dl) {
      fprintf(stderr, "keyport quirk module: cannot load %s: %s\n", path, dlerror());
      return CKR_GENERAL_ERROR;
    }
    g.dl_path = strdup(path);
    if (!g.dl_path) {
      dlclose(g.dl);
      g.dl = NULL;
      return CKR_HOST_MEMORY;
    }
  }
  {
    /* POSIX: converting dlsym's void * to a function pointer. */
    void* sym = dlsym(g.dl, "C_GetFunctionList");
    memcpy(&gfl, &sym, sizeof gfl);
  }
  if (!gfl) {
    fprintf(stderr, "keyport quirk module: %s has no C_GetFunctionList\n", path);
    return CKR_GENERAL_ERROR;
  }
  rv = gfl(&list);
  if (rv != CKR_OK || !list)
    return rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
  g.t = list;
  return CKR_OK;
}

static CK_RV q_Initialize(CK_VOID_PTR pInitArgs) {
  struct config cfg;
  CK_C_INITIALIZE_ARGS copy;
  CK_VOID_PTR args = pInitArgs;
  CK_RV rv;
  if (g.initialized)
    return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  rv = parse_config(&cfg);
  if (rv != CKR_OK)
    return rv;
  if (cfg.flags & Q_INIT_ARGS) {
    const CK_C_INITIALIZE_ARGS* ia = pInitArgs;
    if (!ia || !ia->pReserved || strcmp((const char*)ia->pReserved, cfg.init_args) != 0) {
      config_free(&cfg);
      return CKR_ARGUMENTS_BAD;
    }
    copy = *ia;
    copy.pReserved = NULL;
    args = &copy;
  }
  rv = load_target();
  if (rv == CKR_OK)
    rv = g.t->C_Initialize(args);
  if (rv != CKR_OK) {
    config_free(&cfg);
    return rv;
  }
  g.cfg = cfg;
  g.initialized = 1;
  return CKR_OK;
}

static CK_RV q_Finalize(CK_VOID_PTR pReserved) {
  CK_RV rv;
  NEED_INIT();
  rv = g.t->C_Finalize(pReserved);
  if (rv != CKR_OK)
    return rv;
  cache_drop(1, 0);
  config_free(&g.cfg);
  g.initialized = 0;
  return CKR_OK;
}

static CK_RV q_GetInfo(CK_INFO_PTR pInfo) {
  NEED_INIT();
  if (!pInfo)
    return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  pInfo->cryptokiVersion.major = CRYPTOKI_VERSION_MAJOR;
  pInfo->cryptokiVersion.minor = CRYPTOKI_VERSION_MINOR;
  space_pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "keyport tests");
  space_pad(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "keyport quirk module");
  pInfo->flags = 0;
  pInfo->libraryVersion.major = 0;
  pInfo->libraryVersion.minor = 1;
  return CKR_OK;
}

static CK_RV q_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp) {
  if (!pp)
    return CKR_ARGUMENTS_BAD;
  *pp = &q_list;
  return CKR_OK;
}

static CK_RV q_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount) {
  NEED_INIT();
  return g.t->C_GetSlotList(tokenPresent, pSlotList, pulCount);
}

static CK_RV q_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo) {
  CK_RV rv;
  NEED_INIT();
  rv = g.t->C_GetSlotInfo(slotID, pInfo);
  if (rv == CKR_OK && has(Q_NUL_PADDED)) {
    nul_pad(pInfo->slotDescription, sizeof pInfo->slotDescription);
    nul_pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID);
  }
  return rv;
}

static CK_RV q_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo) {
  CK_RV rv;
  NEED_INIT();
  rv = g.t->C_GetTokenInfo(slotID, pInfo);
  if (rv != CKR_OK)
    return rv;
  if (has(Q_NO_LOGIN))
    pInfo->flags &= ~(CK_FLAGS)CKF_LOGIN_REQUIRED;
  if (has(Q_PIN_PAD))
    pInfo->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
  if (has(Q_NUL_PADDED)) {
    nul_pad(pInfo->label, sizeof pInfo->label);
    nul_pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID);
    nul_pad(pInfo->model, sizeof pInfo->model);
    nul_pad(pInfo->serialNumber, sizeof pInfo->serialNumber);
  }
  return CKR_OK;
}

/* The target's mechanism list in a fresh buffer. */
static CK_RV target_mechs(CK_SLOT_ID slot, CK_MECHANISM_TYPE** out, CK_ULONG* count) {
  for (;;) {
    CK_ULONG n = 0, n2;
    CK_MECHANISM_TYPE* l;
    CK_RV rv = g.t->C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK)
      return rv;
    l = malloc((n + 1) * sizeof *l);
    if (!l)
      return CKR_HOST_MEMORY;
    n2 = n;
    rv = g.t->C_GetMechanismList(slot, l, &n2);
    if (rv == CKR_BUFFER_TOO_SMALL) {
      free(l);
      continue;
    }
    if (rv != CKR_OK) {
      free(l);
      return rv;
    }
    *out = l;
    *count = n2;
    return CKR_OK;
  }
}

static int in_list(const CK_MECHANISM_TYPE* l, CK_ULONG n, CK_MECHANISM_TYPE m) {
  CK_ULONG i;
  for (i = 0; i < n; i++)
    if (l[i] == m)
      return 1;
  return 0;
}

static CK_RV q_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList,
                                CK_ULONG_PTR pulCount) {
  CK_MECHANISM_TYPE *under = NULL, *outl;
  CK_ULONG nu = 0, no = 0, i;
  CK_RV rv;
  NEED_INIT();
  if (!pulCount)
    return CKR_ARGUMENTS_BAD;
  rv = target_mechs(slotID, &under, &nu);
  if (rv != CKR_OK)
    return rv;
  outl = malloc((nu + g.cfg.naliases + 2) * sizeof *outl);
  if (!outl) {
    free(under);
    return CKR_HOST_MEMORY;
  }
  for (i = 0; i < nu; i++)
    if (!is_hidden(under[i]) && !find_alias(under[i]))
      outl[no++] = under[i];
  if (has(Q_NATIVE_RSA_AES) && !is_hidden(CKM_RSA_AES_KEY_WRAP) &&
      !in_list(outl, no, CKM_RSA_AES_KEY_WRAP))
    outl[no++] = CKM_RSA_AES_KEY_WRAP;
  for (i = 0; i < g.cfg.naliases; i++) {
    const struct alias* a = &g.cfg.aliases[i];
    if (in_list(under, nu, a->std) && !is_hidden(a->vendor) && !in_list(outl, no, a->vendor))
      outl[no++] = a->vendor;
  }
  free(under);
  if (!pList) {
    *pulCount = no;
  } else if (*pulCount < no) {
    *pulCount = no;
    rv = CKR_BUFFER_TOO_SMALL;
  } else {
    memcpy(pList, outl, no * sizeof *outl);
    *pulCount = no;
  }
  free(outl);
  return rv;
}

static CK_RV q_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
                                CK_MECHANISM_INFO_PTR pInfo) {
  const struct alias* a;
  CK_RV rv;
  NEED_INIT();
  if (is_hidden(type))
    return CKR_MECHANISM_INVALID;
  a = find_alias(type);
  if (a)
    return g.t->C_GetMechanismInfo(slotID, a->std, pInfo);
  if (has(Q_NATIVE_RSA_AES) && type == CKM_RSA_AES_KEY_WRAP) {
    CK_MECHANISM_INFO oaep;
    if (!pInfo)
      return CKR_ARGUMENTS_BAD;
    rv = g.t->C_GetMechanismInfo(slotID, CKM_RSA_PKCS_OAEP, &oaep); /* checks the slot */
    if (rv != CKR_OK)
      return rv;
    pInfo->ulMinKeySize = 2048;
    pInfo->ulMaxKeySize = 4096;
    pInfo->flags = CKF_WRAP | CKF_UNWRAP;
    return CKR_OK;
  }
  rv = g.t->C_GetMechanismInfo(slotID, type, pInfo);
  if (rv == CKR_OK && has(Q_PAD_PKCS7) && type == CKM_AES_KEY_WRAP_PAD)
    pInfo->flags &= (CK_FLAGS)(CKF_WRAP | CKF_UNWRAP);
  return rv;
}

static CK_RV q_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                         CK_UTF8CHAR_PTR pLabel) {
  NEED_INIT();
  return g.t->C_InitToken(slotID, pPin, ulPinLen, pLabel);
}

static CK_RV q_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  NEED_INIT();
  return g.t->C_InitPIN(hSession, pPin, ulPinLen);
}

static CK_RV q_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                      CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen) {
  NEED_INIT();
  return g.t->C_SetPIN(hSession, pOldPin, ulOldLen, pNewPin, ulNewLen);
}

static CK_RV q_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                           CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession) {
  CK_RV rv;
  NEED_INIT();
  rv = g.t->C_OpenSession(slotID, flags, pApplication, Notify, phSession);
  if (rv != CKR_OK || !has(Q_NO_LOGIN))
    return rv;
  /* The login state belongs to the application and is lost when its last session on the slot
   * closes, so log in whenever a new session comes up public. */
  pthread_mutex_lock(&g_lock);
  {
    CK_SESSION_INFO si;
    if (g.t->C_GetSessionInfo(*phSession, &si) == CKR_OK &&
        (si.state == CKS_RO_PUBLIC_SESSION || si.state == CKS_RW_PUBLIC_SESSION)) {
      CK_RV lr = g.t->C_Login(*phSession, CKU_USER, (CK_UTF8CHAR_PTR)g.cfg.pin,
                              (CK_ULONG)strlen(g.cfg.pin));
      if (lr != CKR_OK && lr != CKR_USER_ALREADY_LOGGED_IN) {
        fprintf(stderr, "keyport quirk module: no-login: C_Login failed (0x%lx)\n",
                (unsigned long)lr);
        g.t->C_CloseSession(*phSession);
        *phSession = CK_INVALID_HANDLE;
        rv = lr;
      }
    }
  }
  pthread_mutex_unlock(&g_lock);
  return rv;
}

static CK_RV q_CloseSession(CK_SESSION_HANDLE hSession) {
  CK_RV rv;
  NEED_INIT();
  rv = g.t->C_CloseSession(hSession);
  cache_drop(0, hSession);
  return rv;
}

static CK_RV q_CloseAllSessions(CK_SLOT_ID slotID) {
  CK_RV rv;
  NEED_INIT();
  rv = g.t->C_CloseAllSessions(slotID);
  cache_drop(1, 0);
  return rv;
}

static CK_RV q_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo) {
  NEED_INIT();
  return g.t->C_GetSessionInfo(hSession, pInfo);
}

static CK_RV q_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState,
                                 CK_ULONG_PTR pulLen) {
  NEED_INIT();
  return g.t->C_GetOperationState(hSession, pState, pulLen);
}

static CK_RV q_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState, CK_ULONG ulLen,
                                 CK_OBJECT_HANDLE hEnc, CK_OBJECT_HANDLE hAuth) {
  NEED_INIT();
  return g.t->C_SetOperationState(hSession, pState, ulLen, hEnc, hAuth);
}

static CK_RV q_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                     CK_ULONG ulPinLen) {
  NEED_INIT();
  if (has(Q_NO_LOGIN) && userType == CKU_USER)
    return CKR_USER_ALREADY_LOGGED_IN;
  if (has(Q_PIN_PAD) && !pPin && ulPinLen == 0) {
    const char* pin = userType == CKU_SO ? g.cfg.so_pin : g.cfg.pin;
    if (!pin)
      return CKR_PIN_INCORRECT;
    return g.t->C_Login(hSession, userType, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
  }
  return g.t->C_Login(hSession, userType, pPin, ulPinLen);
}

static CK_RV q_Logout(CK_SESSION_HANDLE hSession) {
  CK_SESSION_INFO si;
  NEED_INIT();
  if (has(Q_NO_LOGIN)) /* the caller never logged in: nothing to undo */
    return g.t->C_GetSessionInfo(hSession, &si);
  return g.t->C_Logout(hSession);
}

static CK_RV q_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                            CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject) {
  NEED_INIT();
  return g.t->C_CreateObject(hSession, pTemplate, ulCount, phObject);
}

static CK_RV q_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                          CK_OBJECT_HANDLE_PTR phNewObject) {
  NEED_INIT();
  return g.t->C_CopyObject(hSession, hObject, pTemplate, ulCount, phNewObject);
}

static CK_RV q_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
  NEED_INIT();
  return g.t->C_DestroyObject(hSession, hObject);
}

static CK_RV q_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                             CK_ULONG_PTR pulSize) {
  NEED_INIT();
  return g.t->C_GetObjectSize(hSession, hObject, pulSize);
}

/* Attributes whose value is a CK_ULONG (PKCS#11 v2.40 Base 4.x tables). */
static int is_ulong_attr(CK_ATTRIBUTE_TYPE t) {
  switch (t) {
    case CKA_CLASS:
    case CKA_CERTIFICATE_TYPE:
    case CKA_CERTIFICATE_CATEGORY:
    case CKA_JAVA_MIDP_SECURITY_DOMAIN:
    case CKA_NAME_HASH_ALGORITHM:
    case CKA_KEY_TYPE:
    case CKA_MODULUS_BITS:
    case CKA_PRIME_BITS:
    case CKA_SUB_PRIME_BITS:
    case CKA_VALUE_BITS:
    case CKA_VALUE_LEN:
    case CKA_KEY_GEN_MECHANISM:
    case CKA_HW_FEATURE_TYPE:
    case CKA_MECHANISM_TYPE:
      return 1;
    default:
      return 0;
  }
}

static CK_RV q_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                 CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  CK_ULONG i, nbad = 0;
  NEED_INIT();
  if (has(Q_NO_BATCH) && ulCount > 1) {
    if (!pTemplate)
      return CKR_ARGUMENTS_BAD;
    for (i = 0; i < ulCount; i++)
      pTemplate[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
    return CKR_ATTRIBUTE_TYPE_INVALID;
  }
  if (has(Q_ULONG_EXACT) && pTemplate) {
    for (i = 0; i < ulCount; i++)
      if (pTemplate[i].pValue && is_ulong_attr(pTemplate[i].type) &&
          pTemplate[i].ulValueLen != sizeof(CK_ULONG))
        nbad++;
  }
  if (nbad == 0)
    return g.t->C_GetAttributeValue(hSession, hObject, pTemplate, ulCount);
  {
    /* Forward the well-formed entries, refuse the others as NSS softoken does. */
    CK_ATTRIBUTE dummy = {CKA_CLASS, NULL, 0};
    CK_ATTRIBUTE* sub = malloc((ulCount - nbad + 1) * sizeof *sub);
    CK_ULONG* idx = malloc((ulCount - nbad + 1) * sizeof *idx);
    CK_ULONG ns = 0;
    CK_RV rv;
    if (!sub || !idx) {
      free(sub);
      free(idx);
      return CKR_HOST_MEMORY;
    }
    for (i = 0; i < ulCount; i++) {
      if (pTemplate[i].pValue && is_ulong_attr(pTemplate[i].type) &&
          pTemplate[i].ulValueLen != sizeof(CK_ULONG)) {
        pTemplate[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
      } else {
        sub[ns] = pTemplate[i];
        idx[ns++] = i;
      }
    }
    rv = g.t->C_GetAttributeValue(hSession, hObject, ns ? sub : &dummy, ns);
    for (i = 0; i < ns; i++)
      pTemplate[idx[i]].ulValueLen = sub[i].ulValueLen;
    free(sub);
    free(idx);
    if (rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        rv == CKR_BUFFER_TOO_SMALL)
      rv = CKR_ATTRIBUTE_TYPE_INVALID;
    return rv;
  }
}

static CK_RV q_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                 CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  NEED_INIT();
  return g.t->C_SetAttributeValue(hSession, hObject, pTemplate, ulCount);
}

static CK_RV q_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount) {
  NEED_INIT();
  return g.t->C_FindObjectsInit(hSession, pTemplate, ulCount);
}

static CK_RV q_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                           CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount) {
  NEED_INIT();
  return g.t->C_FindObjects(hSession, phObject, ulMaxObjectCount, pulObjectCount);
}

static CK_RV q_FindObjectsFinal(CK_SESSION_HANDLE hSession) {
  NEED_INIT();
  return g.t->C_FindObjectsFinal(hSession);
}

/* The C_*Init functions: hide, alias; and under pad-pkcs7 0x210A is a wrap-only mechanism. */
#define MAP_OR_RETURN(pMech, mapped)      \
  CK_MECHANISM tmp_;                      \
  CK_MECHANISM_PTR mapped;                \
  CK_RV mrv_;                             \
  NEED_INIT();                            \
  mrv_ = map_mech(pMech, &tmp_, &mapped); \
  if (mrv_ != CKR_OK)                     \
    return mrv_;

static int pkcs7_code(CK_MECHANISM_PTR m) {
  return m && has(Q_PAD_PKCS7) && m->mechanism == CKM_AES_KEY_WRAP_PAD;
}

static CK_RV q_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                           CK_OBJECT_HANDLE hKey) {
  MAP_OR_RETURN(pMechanism, m)
  if (pkcs7_code(pMechanism))
    return CKR_MECHANISM_INVALID;
  return g.t->C_EncryptInit(hSession, m, hKey);
}

static CK_RV q_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                       CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen) {
  NEED_INIT();
  return g.t->C_Encrypt(hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
}

static CK_RV q_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                             CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
  NEED_INIT();
  return g.t->C_EncryptUpdate(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

static CK_RV q_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLast, CK_ULONG_PTR pulLast) {
  NEED_INIT();
  return g.t->C_EncryptFinal(hSession, pLast, pulLast);
}

static CK_RV q_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                           CK_OBJECT_HANDLE hKey) {
  MAP_OR_RETURN(pMechanism, m)
  if (pkcs7_code(pMechanism))
    return CKR_MECHANISM_INVALID;
  return g.t->C_DecryptInit(hSession, m, hKey);
}

static CK_RV q_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEnc, CK_ULONG ulEncLen,
                       CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
  NEED_INIT();
  return g.t->C_Decrypt(hSession, pEnc, ulEncLen, pData, pulDataLen);
}

static CK_RV q_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncPart, CK_ULONG ulEncLen,
                             CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
  NEED_INIT();
  return g.t->C_DecryptUpdate(hSession, pEncPart, ulEncLen, pPart, pulPartLen);
}

static CK_RV q_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLast, CK_ULONG_PTR pulLast) {
  NEED_INIT();
  return g.t->C_DecryptFinal(hSession, pLast, pulLast);
}

static CK_RV q_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_DigestInit(hSession, m);
}

static CK_RV q_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                      CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  NEED_INIT();
  return g.t->C_Digest(hSession, pData, ulDataLen, pDigest, pulDigestLen);
}

static CK_RV q_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  NEED_INIT();
  return g.t->C_DigestUpdate(hSession, pPart, ulPartLen);
}

static CK_RV q_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey) {
  NEED_INIT();
  return g.t->C_DigestKey(hSession, hKey);
}

static CK_RV q_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
                           CK_ULONG_PTR pulDigestLen) {
  NEED_INIT();
  return g.t->C_DigestFinal(hSession, pDigest, pulDigestLen);
}

static CK_RV q_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_OBJECT_HANDLE hKey) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_SignInit(hSession, m, hKey);
}

static CK_RV q_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                    CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  NEED_INIT();
  return g.t->C_Sign(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

static CK_RV q_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  NEED_INIT();
  return g.t->C_SignUpdate(hSession, pPart, ulPartLen);
}

static CK_RV q_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                         CK_ULONG_PTR pulSignatureLen) {
  NEED_INIT();
  return g.t->C_SignFinal(hSession, pSignature, pulSignatureLen);
}

static CK_RV q_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                               CK_OBJECT_HANDLE hKey) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_SignRecoverInit(hSession, m, hKey);
}

static CK_RV q_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                           CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  NEED_INIT();
  return g.t->C_SignRecover(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

static CK_RV q_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                          CK_OBJECT_HANDLE hKey) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_VerifyInit(hSession, m, hKey);
}

static CK_RV q_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                      CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  NEED_INIT();
  return g.t->C_Verify(hSession, pData, ulDataLen, pSignature, ulSignatureLen);
}

static CK_RV q_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  NEED_INIT();
  return g.t->C_VerifyUpdate(hSession, pPart, ulPartLen);
}

static CK_RV q_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                           CK_ULONG ulSignatureLen) {
  NEED_INIT();
  return g.t->C_VerifyFinal(hSession, pSignature, ulSignatureLen);
}

static CK_RV q_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                 CK_OBJECT_HANDLE hKey) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_VerifyRecoverInit(hSession, m, hKey);
}

static CK_RV q_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                             CK_ULONG ulSignatureLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
  NEED_INIT();
  return g.t->C_VerifyRecover(hSession, pSignature, ulSignatureLen, pData, pulDataLen);
}

static CK_RV q_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                                   CK_ULONG ulPartLen, CK_BYTE_PTR pEncPart,
                                   CK_ULONG_PTR pulEncPartLen) {
  NEED_INIT();
  return g.t->C_DigestEncryptUpdate(hSession, pPart, ulPartLen, pEncPart, pulEncPartLen);
}

static CK_RV q_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncPart,
                                   CK_ULONG ulEncPartLen, CK_BYTE_PTR pPart,
                                   CK_ULONG_PTR pulPartLen) {
  NEED_INIT();
  return g.t->C_DecryptDigestUpdate(hSession, pEncPart, ulEncPartLen, pPart, pulPartLen);
}

static CK_RV q_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                 CK_BYTE_PTR pEncPart, CK_ULONG_PTR pulEncPartLen) {
  NEED_INIT();
  return g.t->C_SignEncryptUpdate(hSession, pPart, ulPartLen, pEncPart, pulEncPartLen);
}

static CK_RV q_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncPart,
                                   CK_ULONG ulEncPartLen, CK_BYTE_PTR pPart,
                                   CK_ULONG_PTR pulPartLen) {
  NEED_INIT();
  return g.t->C_DecryptVerifyUpdate(hSession, pEncPart, ulEncPartLen, pPart, pulPartLen);
}

static CK_RV q_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                           CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                           CK_OBJECT_HANDLE_PTR phKey) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_GenerateKey(hSession, m, pTemplate, ulCount, phKey);
}

static CK_RV q_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                               CK_ATTRIBUTE_PTR pPubTemplate, CK_ULONG ulPubCount,
                               CK_ATTRIBUTE_PTR pPrivTemplate, CK_ULONG ulPrivCount,
                               CK_OBJECT_HANDLE_PTR phPub, CK_OBJECT_HANDLE_PTR phPriv) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_GenerateKeyPair(hSession, m, pPubTemplate, ulPubCount, pPrivTemplate, ulPrivCount,
                                phPub, phPriv);
}

static CK_RV q_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                       CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                       CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen) {
  int native, pkcs7;
  unsigned char *fp = NULL, *data = NULL;
  size_t fplen = 0, len = 0;
  struct wrap_cache* e;
  CK_RV rv;
  MAP_OR_RETURN(pMechanism, m)
  native = pMechanism && has(Q_NATIVE_RSA_AES) && pMechanism->mechanism == CKM_RSA_AES_KEY_WRAP;
  pkcs7 = pkcs7_code(pMechanism);
  if (!native && !pkcs7)
    return g.t->C_WrapKey(hSession, m, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen);
  if (!pulWrappedKeyLen)
    return CKR_ARGUMENTS_BAD;
  if (!fingerprint(pMechanism, hWrappingKey, hKey, &fp, &fplen))
    return CKR_HOST_MEMORY;
  e = cache_take(hSession, fp, fplen);
  if (e) {
    free(fp);
    fp = NULL;
  } else {
    rv = native ? rsa_aes_wrap(hSession, pMechanism, hWrappingKey, hKey, &data, &len)
                : pkcs7_wrap(hSession, pMechanism, hWrappingKey, hKey, &data, &len);
    if (rv != CKR_OK) {
      free(fp);
      return rv;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
      free(fp);
      free(data);
      return CKR_HOST_MEMORY;
    }
    e->session = hSession;
    e->key = fp;
    e->keylen = fplen;
    e->data = data;
    e->len = len;
  }
  if (!pWrappedKey) {
    *pulWrappedKeyLen = (CK_ULONG)e->len;
    cache_put(e);
    return CKR_OK;
  }
  if (*pulWrappedKeyLen < e->len) {
    *pulWrappedKeyLen = (CK_ULONG)e->len;
    cache_put(e);
    return CKR_BUFFER_TOO_SMALL;
  }
  memcpy(pWrappedKey, e->data, e->len);
  *pulWrappedKeyLen = (CK_ULONG)e->len;
  cache_entry_free(e);
  return CKR_OK;
}

static CK_RV q_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                         CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                         CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                         CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey) {
  MAP_OR_RETURN(pMechanism, m)
  if (pMechanism && has(Q_NATIVE_RSA_AES) && pMechanism->mechanism == CKM_RSA_AES_KEY_WRAP)
    return rsa_aes_unwrap(hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen,
                          pTemplate, ulAttributeCount, phKey);
  if (pkcs7_code(pMechanism))
    return pkcs7_unwrap(hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen,
                        pTemplate, ulAttributeCount, phKey);
  return g.t->C_UnwrapKey(hSession, m, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate,
                          ulAttributeCount, phKey);
}

static CK_RV q_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                         CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
                         CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey) {
  MAP_OR_RETURN(pMechanism, m)
  return g.t->C_DeriveKey(hSession, m, hBaseKey, pTemplate, ulAttributeCount, phKey);
}

static CK_RV q_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen) {
  NEED_INIT();
  return g.t->C_SeedRandom(hSession, pSeed, ulSeedLen);
}

static CK_RV q_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulLen) {
  NEED_INIT();
  return g.t->C_GenerateRandom(hSession, pData, ulLen);
}

static CK_RV q_GetFunctionStatus(CK_SESSION_HANDLE hSession) {
  NEED_INIT();
  return g.t->C_GetFunctionStatus(hSession);
}

static CK_RV q_CancelFunction(CK_SESSION_HANDLE hSession) {
  NEED_INIT();
  return g.t->C_CancelFunction(hSession);
}

static CK_RV q_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved) {
  NEED_INIT();
  return g.t->C_WaitForSlotEvent(flags, pSlot, pReserved);
}

static CK_FUNCTION_LIST q_list = {
    .version = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
    .C_Initialize = q_Initialize,
    .C_Finalize = q_Finalize,
    .C_GetInfo = q_GetInfo,
    .C_GetFunctionList = q_GetFunctionList,
    .C_GetSlotList = q_GetSlotList,
    .C_GetSlotInfo = q_GetSlotInfo,
    .C_GetTokenInfo = q_GetTokenInfo,
    .C_GetMechanismList = q_GetMechanismList,
    .C_GetMechanismInfo = q_GetMechanismInfo,
    .C_InitToken = q_InitToken,
    .C_InitPIN = q_InitPIN,
    .C_SetPIN = q_SetPIN,
    .C_OpenSession = q_OpenSession,
    .C_CloseSession = q_CloseSession,
    .C_CloseAllSessions = q_CloseAllSessions,
    .C_GetSessionInfo = q_GetSessionInfo,
    .C_GetOperationState = q_GetOperationState,
    .C_SetOperationState = q_SetOperationState,
    .C_Login = q_Login,
    .C_Logout = q_Logout,
    .C_CreateObject = q_CreateObject,
    .C_CopyObject = q_CopyObject,
    .C_DestroyObject = q_DestroyObject,
    .C_GetObjectSize = q_GetObjectSize,
    .C_GetAttributeValue = q_GetAttributeValue,
    .C_SetAttributeValue = q_SetAttributeValue,
    .C_FindObjectsInit = q_FindObjectsInit,
    .C_FindObjects = q_FindObjects,
    .C_FindObjectsFinal = q_FindObjectsFinal,
    .C_EncryptInit = q_EncryptInit,
    .C_Encrypt = q_Encrypt,
    .C_EncryptUpdate = q_EncryptUpdate,
    .C_EncryptFinal = q_EncryptFinal,
    .C_DecryptInit = q_DecryptInit,
    .C_Decrypt = q_Decrypt,
    .C_DecryptUpdate = q_DecryptUpdate,
    .C_DecryptFinal = q_DecryptFinal,
    .C_DigestInit = q_DigestInit,
    .C_Digest = q_Digest,
    .C_DigestUpdate = q_DigestUpdate,
    .C_DigestKey = q_DigestKey,
    .C_DigestFinal = q_DigestFinal,
    .C_SignInit = q_SignInit,
    .C_Sign = q_Sign,
    .C_SignUpdate = q_SignUpdate,
    .C_SignFinal = q_SignFinal,
    .C_SignRecoverInit = q_SignRecoverInit,
    .C_SignRecover = q_SignRecover,
    .C_VerifyInit = q_VerifyInit,
    .C_Verify = q_Verify,
    .C_VerifyUpdate = q_VerifyUpdate,
    .C_VerifyFinal = q_VerifyFinal,
    .C_VerifyRecoverInit = q_VerifyRecoverInit,
    .C_VerifyRecover = q_VerifyRecover,
    .C_DigestEncryptUpdate = q_DigestEncryptUpdate,
    .C_DecryptDigestUpdate = q_DecryptDigestUpdate,
    .C_SignEncryptUpdate = q_SignEncryptUpdate,
    .C_DecryptVerifyUpdate = q_DecryptVerifyUpdate,
    .C_GenerateKey = q_GenerateKey,
    .C_GenerateKeyPair = q_GenerateKeyPair,
    .C_WrapKey = q_WrapKey,
    .C_UnwrapKey = q_UnwrapKey,
    .C_DeriveKey = q_DeriveKey,
    .C_SeedRandom = q_SeedRandom,
    .C_GenerateRandom = q_GenerateRandom,
    .C_GetFunctionStatus = q_GetFunctionStatus,
    .C_CancelFunction = q_CancelFunction,
    .C_WaitForSlotEvent = q_WaitForSlotEvent,
};

/* When the application unloads this library: free what it holds, and unload the target too unless
 * the application skipped C_Finalize (then the target may still be in use). */
__attribute__((destructor)) static void q_unload(void) {
  if (g.initialized)
    return;
  cache_drop(1, 0);
  config_free(&g.cfg);
  if (g.dl)
    dlclose(g.dl);
  g.dl = NULL;
  free(g.dl_path);
  g.dl_path = NULL;
}

QEXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  return q_GetFunctionList(ppFunctionList);
}
