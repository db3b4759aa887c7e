/* Cross-arm64 check only: the libsodium calls of the gallery's encrypted
 * re-rank file (HK_EXACT_FILE), which the check does not use. sodium_init()
 * fails, so that mode is refused cleanly; the others abort. */
#ifndef HK_XSHIM_SODIUM_H
#define HK_XSHIM_SODIUM_H
#include <stddef.h>
#define crypto_stream_chacha20_ietf_KEYBYTES 32U
#define crypto_stream_chacha20_ietf_NONCEBYTES 12U
int sodium_init(void);
void crypto_stream_chacha20_ietf_keygen(unsigned char *k);
int crypto_stream_chacha20_ietf_xor_ic(unsigned char *c, const unsigned char *m,
                                       unsigned long long mlen, const unsigned char *n,
                                       unsigned int ic, const unsigned char *k);
#endif
