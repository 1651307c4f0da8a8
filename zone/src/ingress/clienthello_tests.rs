//! Tests of `clienthello`, apart from it so that file stays free of any crate (the fuzz target
//! includes it by path).

use std::sync::Arc;

use super::clienthello::{MAX_CLIENT_HELLO, MAX_INPUT, Parsed, Reader, parse};

// --- real ClientHellos ---

fn rustls_hello_with(
    name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).expect("server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write to a Vec");
    }
    out
}

fn rustls_hello(name: &str) -> Vec<u8> {
    rustls_hello_with(name, rustls::DEFAULT_VERSIONS)
}

/// The handshake message carried by `stream`'s records.
fn unrecord(mut stream: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    while stream.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([stream[3], stream[4]]));
        message.extend_from_slice(&stream[5..5 + len]);
        stream = &stream[5 + len..];
    }
    message
}

/// `message` as handshake records of at most `size` bytes of fragment each.
fn records(message: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in message.chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

// --- hand-built ClientHellos ---

struct Hello {
    version: u16,
    session_id: Vec<u8>,
    suites: Vec<u8>,
    compression: Vec<u8>,
    extensions: Option<Vec<u8>>,
}

impl Hello {
    fn with_extensions(extensions: Vec<u8>) -> Self {
        Hello {
            version: 0x0303,
            session_id: vec![7; 32],
            suites: vec![0x13, 0x01, 0x13, 0x02],
            compression: vec![0],
            extensions: Some(extensions),
        }
    }

    fn named(name: &[u8]) -> Self {
        Self::with_extensions([ext(10, &[0, 2, 0, 29]), sni_ext(&[(0, name)])].concat())
    }

    fn body(&self) -> Vec<u8> {
        let mut b = self.version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0xab; 32]);
        b.push(self.session_id.len() as u8);
        b.extend_from_slice(&self.session_id);
        b.extend_from_slice(&(self.suites.len() as u16).to_be_bytes());
        b.extend_from_slice(&self.suites);
        b.push(self.compression.len() as u8);
        b.extend_from_slice(&self.compression);
        if let Some(e) = &self.extensions {
            b.extend_from_slice(&(e.len() as u16).to_be_bytes());
            b.extend_from_slice(e);
        }
        b
    }

    fn message(&self) -> Vec<u8> {
        handshake(1, &self.body())
    }

    fn stream(&self) -> Vec<u8> {
        records(&self.message(), 1 << 14)
    }
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u32;
    let mut m = vec![kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    m.extend_from_slice(body);
    m
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

fn sni_ext(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    ext(0, &data)
}

/// A padding extension (21) making the whole handshake message exactly `total` bytes.
fn padded_to(total: usize) -> Vec<u8> {
    let base = Hello::named(b"x.example").message().len();
    let pad = total - base - 4;
    Hello::with_extensions(
        [
            ext(10, &[0, 2, 0, 29]),
            sni_ext(&[(0, b"x.example")]),
            ext(21, &vec![0; pad]),
        ]
        .concat(),
    )
    .stream()
}

fn sni(name: &str) -> Parsed {
    Parsed::Sni(name.to_string())
}

#[track_caller]
fn invalid(stream: &[u8], reason_contains: &str) {
    match check_consistent(stream) {
        Parsed::Invalid(reason) => assert!(
            reason.contains(reason_contains),
            "expected a reason with {reason_contains:?}, got {reason:?}"
        ),
        other => panic!("expected Invalid({reason_contains:?}), got {other:?}"),
    }
}

/// Parses `stream` whole, checks that every prefix gives NeedMore or the same answer and that
/// feeding it in pieces of several sizes gives the same answer; returns the answer.
fn check_consistent(stream: &[u8]) -> Parsed {
    let whole = parse(stream);
    for end in 0..stream.len() {
        let prefix = parse(&stream[..end]);
        assert!(
            prefix == Parsed::NeedMore || prefix == whole,
            "prefix of {end} bytes gave {prefix:?}, the whole {whole:?}"
        );
    }
    for size in [1, 2, 3, 5, 7, 64, 1000] {
        let mut reader = Reader::new();
        let mut last = Parsed::NeedMore;
        for piece in stream.chunks(size) {
            last = reader.push(piece);
        }
        assert_eq!(last, whole, "fed in pieces of {size}");
    }
    whole
}

// --- tests ---

#[test]
fn rustls_client_hello() {
    let hello = rustls_hello("x.example");
    assert_eq!(hello[0], 22, "a handshake record");
    assert_eq!(check_consistent(&hello), sni("x.example"));
    let mut reader = Reader::new();
    assert_eq!(reader.push(&hello), sni("x.example"));
    assert_eq!(reader.consumed(), hello.len(), "decided at the last byte");
}

#[test]
fn rustls_tls12_client_hello() {
    let hello = rustls_hello_with("backend.80.default.atoll", &[&rustls::version::TLS12]);
    assert_eq!(check_consistent(&hello), sni("backend.80.default.atoll"));
}

#[test]
fn sni_is_lower_cased() {
    assert_eq!(
        parse(&Hello::named(b"X.Example.COM").stream()),
        sni("x.example.com")
    );
    assert_eq!(parse(&rustls_hello("Mixed.Example")), sni("mixed.example"));
}

#[test]
fn every_proper_prefix_needs_more() {
    let hello = rustls_hello("x.example");
    for end in 0..hello.len() {
        assert_eq!(
            parse(&hello[..end]),
            Parsed::NeedMore,
            "prefix of {end} bytes"
        );
    }
}

#[test]
fn byte_by_byte() {
    let hello = rustls_hello("x.example");
    let mut reader = Reader::new();
    for (i, byte) in hello.iter().enumerate() {
        let got = reader.push(std::slice::from_ref(byte));
        if i + 1 < hello.len() {
            assert_eq!(got, Parsed::NeedMore, "after byte {i}");
        } else {
            assert_eq!(got, sni("x.example"));
        }
    }
    // Decided: later bytes (the rest of the connection) change nothing.
    assert_eq!(reader.push(b"\x17\x03\x03garbage"), sni("x.example"));
}

#[test]
fn split_into_one_byte_records() {
    let message = unrecord(&rustls_hello("x.example"));
    let stream = records(&message, 1);
    assert_eq!(stream.len(), message.len() * 6);
    assert_eq!(check_consistent(&stream), sni("x.example"));
}

#[test]
fn split_into_records_of_every_small_size() {
    let message = unrecord(&rustls_hello("x.example"));
    for size in 1..=64 {
        assert_eq!(
            parse(&records(&message, size)),
            sni("x.example"),
            "records of {size}"
        );
    }
}

#[test]
fn bytes_after_the_hello_are_not_examined() {
    let mut stream = rustls_hello("x.example");
    stream.extend_from_slice(&[23, 3, 3, 0, 5, 1, 2, 3, 4, 5]);
    assert_eq!(check_consistent(&stream), sni("x.example"));
    let mut reader = Reader::new();
    reader.push(&stream);
    assert_eq!(reader.consumed(), stream.len() - 10);
}

#[test]
fn without_server_name() {
    let mut no_extensions = Hello::named(b"unused");
    no_extensions.extensions = None;
    assert_eq!(check_consistent(&no_extensions.stream()), Parsed::NoSni);
    let other_extensions = Hello::with_extensions(ext(10, &[0, 2, 0, 29]));
    assert_eq!(check_consistent(&other_extensions.stream()), Parsed::NoSni);
    let empty_extensions = Hello::with_extensions(Vec::new());
    assert_eq!(check_consistent(&empty_extensions.stream()), Parsed::NoSni);
}

#[test]
fn size_bounds() {
    assert_eq!(
        padded_to(MAX_CLIENT_HELLO).len(),
        MAX_CLIENT_HELLO + 5,
        "one full record"
    );
    assert_eq!(parse(&padded_to(MAX_CLIENT_HELLO)), sni("x.example"));
    invalid(&padded_to(MAX_CLIENT_HELLO + 1), "larger than the limit");
    // Decided on the handshake header alone, before the body arrives.
    assert_eq!(
        parse(&[22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]),
        Parsed::Invalid("ClientHello larger than the limit")
    );
    // A hello within the limit but cut into so many records that the stream exceeds MAX_INPUT.
    let message = unrecord(&padded_to(MAX_CLIENT_HELLO));
    let stream = records(&message, 1);
    assert!(stream.len() > MAX_INPUT);
    assert_eq!(
        parse(&stream),
        Parsed::Invalid("ClientHello spread over too many bytes of records")
    );
    let mut reader = Reader::new();
    reader.push(&stream);
    assert!((MAX_INPUT..MAX_INPUT + 6).contains(&reader.consumed()));
}

#[test]
fn host_name_bounds() {
    let label = "a".repeat(63);
    let longest = [&label[..], &label, &label, &label[..61]].join(".");
    assert_eq!(longest.len(), 253);
    assert_eq!(
        parse(&Hello::named(longest.as_bytes()).stream()),
        sni(&longest)
    );
    invalid(
        &Hello::named(format!("{longest}a").as_bytes()).stream(),
        "longer than 253",
    );
    invalid(
        &Hello::named(format!("{label}a.example").as_bytes()).stream(),
        "longer than 63",
    );
    assert_eq!(
        parse(&Hello::named(b"a_b-c.9.example").stream()),
        sni("a_b-c.9.example")
    );
}

#[test]
fn invalid_host_names() {
    for (name, reason) in [
        (&b""[..], "empty host name"),
        (b"x.example.", "empty label"),
        (b".x.example", "empty label"),
        (b"x..example", "empty label"),
        (b"caf\xc3\xa9.example", "not allowed"),
        (b"x example", "not allowed"),
        (b"x\0.example", "not allowed"),
        (b"x/example", "not allowed"),
        (b"x.example:443", "not allowed"),
    ] {
        invalid(&Hello::named(name).stream(), reason);
    }
}

#[test]
fn invalid_server_name_extensions() {
    let base = || vec![ext(10, &[0, 2, 0, 29])];
    let with =
        |extra: Vec<Vec<u8>>| Hello::with_extensions([base(), extra].concat().concat()).stream();
    invalid(
        &with(vec![
            sni_ext(&[(0, b"a.example")]),
            sni_ext(&[(0, b"b.example")]),
        ]),
        "duplicate server_name",
    );
    invalid(
        &with(vec![sni_ext(&[(0, b"a.example"), (0, b"b.example")])]),
        "more than one host_name",
    );
    invalid(
        &with(vec![sni_ext(&[(1, b"a.example")])]),
        "other than host_name",
    );
    invalid(
        &with(vec![sni_ext(&[(0, b"a.example"), (1, b"x")])]),
        "other than host_name",
    );
    invalid(&with(vec![sni_ext(&[])]), "empty server_name list");
    invalid(&with(vec![ext(0, &[])]), "truncated server_name list");
    invalid(
        &with(vec![ext(0, &[0, 9, 0, 0, 1, b'a'])]),
        "truncated server_name list",
    );
    invalid(&with(vec![ext(0, &[0, 4, 0, 0, 1, b'a', 0])]), "disagrees");
    invalid(
        &with(vec![ext(0, &[0, 4, 0, 0, 5, b'a'])]),
        "truncated server name",
    );
    invalid(&with(vec![ext(0, &[0, 2, 0, 0])]), "truncated server name");
    invalid(
        &with(vec![sni_ext(&[(0, b"a.example")]), ext(10, &[0, 2, 0, 23])]),
        "duplicate extension",
    );
}

#[test]
fn invalid_client_hello_bodies() {
    let hello = || Hello::named(b"x.example");
    let mut h = hello();
    h.session_id = vec![0; 33];
    invalid(&h.stream(), "session id longer");
    let mut h = hello();
    h.suites = vec![0x13, 0x01, 0x13];
    invalid(&h.stream(), "cipher suite");
    let mut h = hello();
    h.suites = Vec::new();
    invalid(&h.stream(), "cipher suite");
    let mut h = hello();
    h.compression = Vec::new();
    invalid(&h.stream(), "no compression");
    let mut h = hello();
    h.version = 0x0203;
    invalid(&h.stream(), "unknown protocol version");

    // Lengths that disagree with the handshake header.
    let body = hello().body();
    invalid(
        &records(&handshake(1, &body[..body.len() - 1]), 1 << 14),
        "",
    );
    let mut longer = body.clone();
    longer.push(0);
    invalid(
        &records(&handshake(1, &longer), 1 << 14),
        "bytes after the extensions",
    );
    let mut truncated_ext = hello().body();
    let n = truncated_ext.len();
    // Claim one more extension byte than the body has.
    let ext_len_at = 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1;
    let claimed =
        u16::from_be_bytes([truncated_ext[ext_len_at], truncated_ext[ext_len_at + 1]]) + 1;
    truncated_ext[ext_len_at..ext_len_at + 2].copy_from_slice(&claimed.to_be_bytes());
    assert_eq!(truncated_ext.len(), n);
    invalid(
        &records(&handshake(1, &truncated_ext), 1 << 14),
        "extensions length disagrees",
    );
    invalid(
        &records(&handshake(1, &[3, 3]), 1 << 14),
        "truncated in its random",
    );
    invalid(
        &records(&handshake(1, &[]), 1 << 14),
        "truncated in its version",
    );
    // An extension header cut short inside the extensions block.
    let cut = Hello::with_extensions(vec![0, 10, 0]).stream();
    invalid(&cut, "truncated extension");
    let cut = Hello::with_extensions(vec![0, 10, 0, 5, 1]).stream();
    invalid(&cut, "truncated extension");
}

#[test]
fn invalid_records() {
    let hello = rustls_hello("x.example");
    invalid(
        b"GET / HTTP/1.1\r\nHost: x.example\r\n\r\n",
        "not a handshake record",
    );
    invalid(b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10", "SSLv2");
    invalid(&[21, 3, 3, 0, 2, 2, 40], "not a handshake record");
    invalid(&[22, 2, 0, 0, 4], "unknown protocol version");
    invalid(&[22, 3, 1, 0, 0], "empty handshake record");
    invalid(&[22, 3, 1, 0x40, 0x01], "longer than 2^14");
    let server_hello = records(&handshake(2, &Hello::named(b"x.example").body()), 1 << 14);
    invalid(&server_hello, "not a ClientHello");
    // An alert between two fragments of the hello.
    let message = unrecord(&hello);
    let mut interleaved = records(&message[..10], 10);
    interleaved.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
    interleaved.extend_from_slice(&records(&message[10..], 1 << 14));
    invalid(&interleaved, "interleaved");
    // Decided on the first byte: no need to wait for more.
    assert_eq!(
        parse(b"G"),
        Parsed::Invalid("first record is not a handshake record")
    );
    assert_eq!(parse(&[]), Parsed::NeedMore);
}

#[test]
fn mutated_rustls_hellos_never_panic_and_stay_consistent() {
    let hello = rustls_hello("x.example");
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..hello.len() {
        for value in [
            0x00,
            0x01,
            0x16,
            0x7f,
            0x80,
            0xff,
            hello[i] ^ 0x01,
            hello[i].wrapping_add(1),
        ] {
            let mut m = hello.clone();
            m[i] = value;
            let got = parse(&m);
            *outcomes.entry(format!("{got:?}")).or_default() += 1;
            if let Parsed::Sni(name) = &got {
                assert!(name.len() <= 253 && name.bytes().all(|b| !b.is_ascii_uppercase()));
            }
        }
        // Cut anywhere: never an answer other than NeedMore for a hello that would be valid.
        assert_eq!(parse(&hello[..i]), Parsed::NeedMore);
    }
    // The mutations reach deep enough to produce a range of answers.
    assert!(outcomes.len() > 10, "{outcomes:#?}");
}

#[test]
fn random_mutations_are_consistent() {
    let hello = rustls_hello("x.example");
    let mut rng = fastrand::Rng::with_seed(6);
    for _ in 0..300 {
        let mut m = hello.clone();
        for _ in 0..rng.usize(1..4) {
            match rng.u8(0..3) {
                0 => {
                    let i = rng.usize(0..m.len());
                    m[i] = rng.u8(..);
                }
                1 if m.len() > 1 => {
                    let i = rng.usize(0..m.len());
                    m.remove(i);
                }
                _ => {
                    let i = rng.usize(0..=m.len());
                    m.insert(i, rng.u8(..));
                }
            }
        }
        check_consistent(&m);
    }
}
