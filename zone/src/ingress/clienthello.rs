//! Finds the SNI in the first bytes of a TLS connection, without decrypting anything.
//!
//! Owns the reading of a TLS ClientHello from untrusted bytes: the record layer (a ClientHello
//! may be fragmented over several handshake records, and records over several reads), the
//! handshake header, and the `server_name` extension (RFC 6066). Everything else in the hello
//! is skipped, checked only as far as needed to find the extensions.
//!
//! Must not depend on anything but `core`/`std` (the fuzz target includes this file by path),
//! must not panic or index out of bounds on any input, and must not look at more than
//! [`MAX_CLIENT_HELLO`] bytes of handshake message or [`MAX_INPUT`] bytes of stream: a peer
//! decides what it sends, the ingress decides how much of it it is willing to hold.
//!
//! The reader is a state machine over the byte stream that decides as early as the bytes
//! allow: feeding a stream in any number of pieces gives the same answer as feeding it whole,
//! and a prefix of a stream gives either [`Parsed::NeedMore`] or the answer of the whole.

/// The largest ClientHello handshake message accepted (header included). Real ones are well
/// under 2 KiB, post-quantum key shares included; 16 KiB leaves room for large session tickets
/// and padding while bounding what a connection can make the ingress buffer.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// The most stream bytes read before the ClientHello must be complete. Record headers cost 5
/// bytes each, so a hello cut into tiny records needs more stream than hello; this bounds it.
pub const MAX_INPUT: usize = 64 * 1024;

/// TLSPlaintext.length may not exceed 2^14 (RFC 8446, 5.1).
const MAX_RECORD: usize = 1 << 14;
const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;
const MAX_HOST_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// What the bytes seen so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes to decide: read more and ask again.
    NeedMore,
    /// A well-formed ClientHello naming this host (lower-cased).
    Sni(String),
    /// A well-formed ClientHello without a `server_name` extension.
    NoSni,
    /// Not a TLS ClientHello the ingress will route; the reason is for logs.
    Invalid(&'static str),
}

/// Reads `buf` (the first bytes of a connection) from the start.
pub fn parse(buf: &[u8]) -> Parsed {
    Reader::new().push(buf)
}

/// The incremental form of [`parse`]: push bytes as they arrive, each byte examined once.
///
/// Re-parsing an accumulated buffer after every read would cost quadratic time for a peer that
/// trickles its hello in tiny records and segments; this keeps the cost linear.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    /// Stream bytes consumed so far.
    consumed: usize,
    /// The record header being read (valid up to `header_len`).
    header: [u8; RECORD_HEADER],
    header_len: usize,
    /// Fragment bytes left in the current record; 0 while reading a header.
    remaining: usize,
    records: usize,
    /// The handshake message reassembled from the record fragments, never longer than
    /// [`MAX_CLIENT_HELLO`].
    message: Vec<u8>,
    /// Once decided, the answer sticks: later bytes belong to whoever we forward to.
    outcome: Option<Parsed>,
}

// === impl Reader ===

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream; returns the answer so far. After an answer other
    /// than [`Parsed::NeedMore`] further bytes are ignored and the same answer is returned.
    pub fn push(&mut self, data: &[u8]) -> Parsed {
        if let Some(outcome) = &self.outcome {
            return outcome.clone();
        }
        let outcome = self.advance(data);
        if outcome != Parsed::NeedMore {
            self.outcome = Some(outcome.clone());
        }
        outcome
    }

    /// Stream bytes examined so far (all of them once an answer is reached: the answer's
    /// position in the stream).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    fn advance(&mut self, mut data: &[u8]) -> Parsed {
        loop {
            if self.remaining == 0 {
                if self.header_len == 0 && self.consumed >= MAX_INPUT {
                    return Parsed::Invalid("ClientHello spread over too many bytes of records");
                }
                let Some((&byte, rest)) = data.split_first() else {
                    return Parsed::NeedMore;
                };
                data = rest;
                self.consumed += 1;
                if let Some(slot) = self.header.get_mut(self.header_len) {
                    *slot = byte;
                }
                self.header_len += 1;
                if let Err(reason) = self.check_header() {
                    return Parsed::Invalid(reason);
                }
                continue;
            }
            if data.is_empty() {
                return Parsed::NeedMore;
            }
            let take = self.wanted().min(self.remaining).min(data.len());
            let (Some(chunk), Some(rest)) = (data.get(..take), data.get(take..)) else {
                return Parsed::Invalid("internal: fragment bounds");
            };
            self.message.extend_from_slice(chunk);
            data = rest;
            self.consumed += take;
            self.remaining -= take;
            match self.check_message() {
                Ok(None) => {}
                Ok(Some(Some(sni))) => return Parsed::Sni(sni),
                Ok(Some(None)) => return Parsed::NoSni,
                Err(reason) => return Parsed::Invalid(reason),
            }
        }
    }

    /// Checks the record header as far as it has been read; completes it at 5 bytes.
    fn check_header(&mut self) -> Result<(), &'static str> {
        let h = self.header;
        match self.header_len {
            1 if self.records == 0 && h[0] & 0x80 != 0 => {
                // An SSLv2 record header has its top bit set; TLS content types never do.
                Err("SSLv2-style ClientHello")
            }
            1 if h[0] != CONTENT_TYPE_HANDSHAKE => Err(if self.records == 0 {
                "first record is not a handshake record"
            } else {
                "another record type interleaved with the ClientHello"
            }),
            2 if h[1] != 3 => Err("record with an unknown protocol version"),
            RECORD_HEADER => {
                let length = usize::from(u16::from_be_bytes([h[3], h[4]]));
                if length == 0 {
                    // RFC 8446 5.1 forbids empty handshake fragments; they would also let a
                    // peer send unbounded headers that make no progress.
                    return Err("empty handshake record");
                }
                if length > MAX_RECORD {
                    return Err("record longer than 2^14 bytes");
                }
                self.remaining = length;
                self.header_len = 0;
                self.records += 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Message bytes still needed: the rest of the handshake header, then of the body.
    fn wanted(&self) -> usize {
        let total = match self.body_len() {
            Some(body) => HANDSHAKE_HEADER + body,
            None => HANDSHAKE_HEADER,
        };
        total.saturating_sub(self.message.len()).max(1)
    }

    fn body_len(&self) -> Option<usize> {
        match self.message.get(..HANDSHAKE_HEADER) {
            Some(&[_, a, b, c]) => {
                Some(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
            }
            _ => None,
        }
    }

    /// `Ok(None)` while incomplete; `Ok(Some(sni))` once the whole message has been read.
    fn check_message(&self) -> Result<Option<Option<String>>, &'static str> {
        if let Some(&kind) = self.message.first()
            && kind != HANDSHAKE_CLIENT_HELLO
        {
            return Err("first handshake message is not a ClientHello");
        }
        let Some(body_len) = self.body_len() else {
            return Ok(None);
        };
        if body_len > MAX_CLIENT_HELLO - HANDSHAKE_HEADER {
            return Err("ClientHello larger than the limit");
        }
        match self
            .message
            .get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + body_len)
        {
            Some(body) => client_hello(body).map(Some),
            None => Ok(None),
        }
    }
}

/// The SNI of a complete ClientHello body (RFC 8446 4.1.2, which also covers TLS 1.0-1.2).
fn client_hello(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut c = Cursor(body);
    let version = c.u16().ok_or("ClientHello truncated in its version")?;
    if version >> 8 != 3 {
        return Err("ClientHello with an unknown protocol version");
    }
    c.take(32).ok_or("ClientHello truncated in its random")?;
    let session_id = c.vec8().ok_or("ClientHello truncated in its session id")?;
    if session_id.len() > 32 {
        return Err("session id longer than 32 bytes");
    }
    let suites = c
        .vec16()
        .ok_or("ClientHello truncated in its cipher suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("malformed cipher suite list");
    }
    let compression = c
        .vec8()
        .ok_or("ClientHello truncated in its compression methods")?;
    if compression.is_empty() {
        return Err("no compression method");
    }
    if c.is_empty() {
        // Extensions are optional before TLS 1.3: a valid hello that names no server.
        return Ok(None);
    }
    let extensions = c
        .vec16()
        .ok_or("extensions length disagrees with the ClientHello length")?;
    if !c.is_empty() {
        return Err("bytes after the extensions");
    }
    let mut e = Cursor(extensions);
    let mut sni = None;
    let mut seen = Vec::new();
    while !e.is_empty() {
        let kind = e.u16().ok_or("truncated extension header")?;
        let data = e.vec16().ok_or("truncated extension")?;
        if kind == EXTENSION_SERVER_NAME {
            if sni.is_some() {
                return Err("duplicate server_name extension");
            }
            sni = Some(server_name(data)?);
        }
        seen.push(kind);
    }
    // RFC 8446 4.2: at most one extension of each type. A peer that repeats one is either
    // broken or probing for parsers that disagree with the backend's about which one counts.
    seen.sort_unstable();
    if seen.windows(2).any(|w| w.first() == w.get(1)) {
        return Err("duplicate extension");
    }
    Ok(sni)
}

/// The host name of a `server_name` extension body (RFC 6066 3).
fn server_name(data: &[u8]) -> Result<String, &'static str> {
    let mut c = Cursor(data);
    let list = c.vec16().ok_or("truncated server_name list")?;
    if !c.is_empty() {
        return Err("server_name list length disagrees with its extension");
    }
    let mut names = Cursor(list);
    let mut host = None;
    while !names.is_empty() {
        let kind = names.u8().ok_or("truncated server name")?;
        let name = names.vec16().ok_or("truncated server name")?;
        if kind != NAME_TYPE_HOST_NAME {
            return Err("server name of a type other than host_name");
        }
        if host.is_some() {
            return Err("more than one host_name");
        }
        host = Some(host_name(name)?);
    }
    host.ok_or("empty server_name list")
}

/// A DNS-ish host name, lower-cased: ASCII letters, digits, `-` and `_` in non-empty labels of
/// at most 63 bytes, at most 253 bytes in all, no trailing dot (RFC 6066 forbids it).
fn host_name(name: &[u8]) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("empty host name");
    }
    if name.len() > MAX_HOST_NAME {
        return Err("host name longer than 253 bytes");
    }
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err("empty label in host name");
        }
        if label.len() > MAX_LABEL {
            return Err("host name label longer than 63 bytes");
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("host name with a byte not allowed in DNS names");
        }
    }
    Ok(name
        .iter()
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect())
}

/// Reads big-endian fields off the front of a slice; `None` when the slice is too short.
struct Cursor<'a>(&'a [u8]);

// === impl Cursor ===

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        match self.take(2)? {
            &[a, b] => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}
