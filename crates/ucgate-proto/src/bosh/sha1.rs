//! SHA-1 for the XEP-0124 §15 key sequence only, from RustCrypto's `sha1`
//! crate (audited and maintained, rather than a hand-written copy).
//!
//! XEP-0124 §15.3 mandates SHA-1 (RFC 3174) for `key`/`newkey`: K(n) =
//! hex(SHA-1(K(n-1))). SHA-1 is not used for anything else; do not use it
//! where collision resistance matters.

use sha1::{Digest, Sha1};

/// The SHA-1 digest of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// The lowercase hex SHA-1 of `data` (the form keys travel in).
pub fn sha1_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(40);
    for b in sha1(data) {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2 appendix A and the NIST example vectors.
    #[test]
    fn fips_180_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "a49b2446a02c645bf419f995b67091253a04a259",
            ),
            (
                b"The quick brown fox jumps over the lazy dog",
                "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sha1_hex(input), *want, "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            sha1_hex(&vec![b'a'; 1_000_000]),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    /// Every padding boundary (55, 56, 63, 64, 65 bytes …) gives a digest
    /// that differs from its neighbours and is stable.
    #[test]
    fn padding_boundaries() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..200 {
            assert!(seen.insert(sha1_hex(&vec![b'x'; n])));
        }
        // 64 bytes of 'a' (one full block plus a padding block)
        assert_eq!(
            sha1_hex(&[b'a'; 64]),
            "0098ba824b5c16427bd7a1122a5a442a25ec644d"
        );
    }
}
