use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Every strict prefix of `bytes` is Incomplete and the whole is `want`.
fn byte_by_byte(bytes: &[u8], want: Parse) {
    for n in 0..bytes.len() {
        assert_eq!(
            parse(&bytes[..n]),
            Parse::Incomplete,
            "prefix of {n} bytes of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(parse(bytes), want, "{:?}", String::from_utf8_lossy(bytes));
}

const FFFF6: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

#[test]
fn v1_examples_of_the_specification() {
    let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    byte_by_byte(
        line,
        Parse::Done(
            Header::Proxied {
                version: 1,
                source: sa("192.168.0.1:56324"),
                destination: sa("192.168.0.11:443"),
            },
            line.len(),
        ),
    );
    // The worst cases the specification lists, 56, 104 and 107 bytes.
    let tcp4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(tcp4.len(), 56);
    assert!(matches!(
        parse(tcp4),
        Parse::Done(Header::Proxied { .. }, 56)
    ));
    let tcp6 = format!("PROXY TCP6 {FFFF6} {FFFF6} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    byte_by_byte(
        tcp6.as_bytes(),
        Parse::Done(
            Header::Proxied {
                version: 1,
                source: SocketAddr::new(FFFF6.parse().unwrap(), 65535),
                destination: SocketAddr::new(FFFF6.parse().unwrap(), 65535),
            },
            104,
        ),
    );
    let unknown = format!("PROXY UNKNOWN {FFFF6} {FFFF6} 65535 65535\r\n");
    assert_eq!(unknown.len(), V1_MAX);
    byte_by_byte(
        unknown.as_bytes(),
        Parse::Done(Header::Local { version: 1 }, V1_MAX),
    );
    byte_by_byte(
        b"PROXY UNKNOWN\r\n",
        Parse::Done(Header::Local { version: 1 }, 15),
    );
}

#[test]
fn v1_leaves_what_follows_the_line() {
    let mut bytes = b"PROXY TCP6 2001:db8::1 ::1 4000 443\r\n".to_vec();
    let n = bytes.len();
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        parse(&bytes),
        Parse::Done(
            Header::Proxied {
                version: 1,
                source: sa("[2001:db8::1]:4000"),
                destination: sa("[::1]:443"),
            },
            n
        )
    );
}

#[test]
fn no_header_is_refused_at_the_first_byte() {
    for start in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01\x02\x00", // a TLS ClientHello
        b"PRI * HTTP/2.0",
        b"proxy TCP4",
        b"PROXYTCP4",
        b"\r\n\r\nGET",
        b"\r\n\r\n\0\r\nQUIT!",
    ] {
        assert_eq!(
            parse(start),
            Parse::Invalid(ProxyError::Missing),
            "{:?}",
            String::from_utf8_lossy(start)
        );
    }
    assert_eq!(parse(b"G"), Parse::Invalid(ProxyError::Missing));
    assert_eq!(parse(b""), Parse::Incomplete);
}

#[test]
fn v1_malformed_lines() {
    for line in [
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 extra\r\n",
        "PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP6 192.168.0.1 192.168.0.11 1 2\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 +1 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 01 443\r\n",
        "PROXY TCP4 192.168.0.01 192.168.0.11 1 443\r\n",
        "PROXY UDP4 192.168.0.1 192.168.0.11 1 443\r\n",
        "PROXY tcp4 192.168.0.1 192.168.0.11 1 443\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
    ] {
        assert_eq!(
            parse(line.as_bytes()),
            Parse::Invalid(ProxyError::BadV1),
            "{line:?}"
        );
    }
    // A bare LF or a control byte is refused as soon as it is seen.
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4\n"),
        Parse::Invalid(ProxyError::BadV1)
    );
    assert_eq!(parse(b"PROXY TCP4\t"), Parse::Invalid(ProxyError::BadV1));
    assert_eq!(
        parse(b"PROXY TCP4 1\xc3\xa9"),
        Parse::Invalid(ProxyError::BadV1)
    );
    // Port 0 and 65535 are ports.
    assert!(matches!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n"),
        Parse::Done(..)
    ));
}

#[test]
fn v1_longer_than_107_bytes_is_refused_without_its_end() {
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX, b'x');
    assert_eq!(parse(&long[..V1_MAX - 1]), Parse::Incomplete);
    assert_eq!(parse(&long), Parse::Invalid(ProxyError::TooLong));
    // The CR as the 107th byte: the LF would be the 108th.
    long[V1_MAX - 1] = b'\r';
    assert_eq!(parse(&long), Parse::Invalid(ProxyError::TooLong));
    long.push(b'\n');
    assert_eq!(parse(&long), Parse::Invalid(ProxyError::TooLong));
    // The CR as the 106th: 107 bytes in all, accepted.
    long.truncate(V1_MAX - 2);
    long.extend_from_slice(b"\r\n");
    assert_eq!(long.len(), V1_MAX);
    assert_eq!(
        parse(&long),
        Parse::Done(Header::Local { version: 1 }, V1_MAX)
    );
}

/// A v2 header: command, family byte, address block and TLVs.
fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut v = V2_SIGNATURE.to_vec();
    v.push(ver_cmd);
    v.push(fam);
    v.extend_from_slice(&(block.len() as u16).to_be_bytes());
    v.extend_from_slice(block);
    v
}

#[test]
fn v2_proxy_inet_and_inet6() {
    // 192.0.2.7:4000 → 198.51.100.1:443, TCP over IPv4.
    let block = [192, 0, 2, 7, 198, 51, 100, 1, 0x0f, 0xa0, 0x01, 0xbb];
    let h = v2(0x21, 0x11, &block);
    assert_eq!(h.len(), 28);
    byte_by_byte(
        &h,
        Parse::Done(
            Header::Proxied {
                version: 2,
                source: sa("192.0.2.7:4000"),
                destination: sa("198.51.100.1:443"),
            },
            28,
        ),
    );
    let mut block6 = Vec::new();
    block6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    block6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    block6.extend_from_slice(&[0xff, 0xff, 0x00, 0x50]);
    let h = v2(0x21, 0x21, &block6);
    assert_eq!(h.len(), 52);
    byte_by_byte(
        &h,
        Parse::Done(
            Header::Proxied {
                version: 2,
                source: sa("[2001:db8::7]:65535"),
                destination: sa("[::1]:80"),
            },
            52,
        ),
    );
}

#[test]
fn v2_tlvs_are_skipped_and_the_stream_left_alone() {
    let mut block = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2];
    // PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "chat.example", a NOOP.
    block.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
    block.extend_from_slice(&[0x02, 0x00, 0x0c]);
    block.extend_from_slice(b"chat.example");
    block.extend_from_slice(&[0x04, 0x00, 0x00]);
    let mut h = v2(0x21, 0x11, &block);
    let n = h.len();
    h.extend_from_slice(b"\x16\x03\x01");
    assert_eq!(
        parse(&h),
        Parse::Done(
            Header::Proxied {
                version: 2,
                source: sa("10.0.0.1:1"),
                destination: sa("10.0.0.2:2"),
            },
            n
        )
    );
}

#[test]
fn v2_local_unspec_and_unix_keep_the_connection_address() {
    // LOCAL (a health check): the block, even an IPv4 one, is ignored.
    byte_by_byte(
        &v2(0x20, 0x00, &[]),
        Parse::Done(Header::Local { version: 2 }, 16),
    );
    assert_eq!(
        parse(&v2(0x20, 0x11, &[1, 2, 3])),
        Parse::Done(Header::Local { version: 2 }, 19)
    );
    // PROXY over AF_UNSPEC or AF_UNIX: no IP address to use.
    assert_eq!(
        parse(&v2(0x21, 0x00, &[])),
        Parse::Done(Header::Local { version: 2 }, 16)
    );
    assert_eq!(
        parse(&v2(0x21, 0x31, &[0; 216])),
        Parse::Done(Header::Local { version: 2 }, 232)
    );
}

#[test]
fn v2_refusals() {
    let inet = [0u8; 12];
    // Version 1 in the binary form, version 3, command 2.
    for vc in [0x11, 0x31, 0x22, 0x2f] {
        assert_eq!(
            parse(&v2(vc, 0x11, &inet)[..13]),
            Parse::Invalid(ProxyError::BadV2Command),
            "{vc:#x}"
        );
    }
    // Family 4, transport 3.
    for fam in [0x41, 0x13, 0xf1] {
        assert_eq!(
            parse(&v2(0x21, fam, &inet)[..14]),
            Parse::Invalid(ProxyError::BadV2Family),
            "{fam:#x}"
        );
    }
    // Too short for the family: refused from the length alone.
    assert_eq!(
        parse(&v2(0x21, 0x11, &[0; 11])[..16]),
        Parse::Invalid(ProxyError::BadV2Length)
    );
    assert_eq!(
        parse(&v2(0x21, 0x21, &[0; 35])[..16]),
        Parse::Invalid(ProxyError::BadV2Length)
    );
    assert_eq!(
        parse(&v2(0x21, 0x31, &[0; 215])[..16]),
        Parse::Invalid(ProxyError::BadV2Length)
    );
    // Longer than V2_MAX: refused from the length alone.
    let long = v2(0x21, 0x11, &vec![0; V2_MAX - 16 + 1]);
    assert_eq!(parse(&long[..16]), Parse::Invalid(ProxyError::TooLong));
    let max = v2(0x21, 0x11, &vec![0; V2_MAX - 16]);
    assert_eq!(parse(&max[..16]), Parse::Incomplete);
    assert!(matches!(parse(&max), Parse::Done(_, V2_MAX)));
}
