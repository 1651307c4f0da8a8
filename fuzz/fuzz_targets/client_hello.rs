//! Any bytes as the start of a connection to the zone ingress: the ClientHello reader never
//! panics, a prefix of the input never gives an answer other than "need more" or the answer of
//! the whole input (so it never names a different SNI), and feeding the input in pieces gives
//! the same answer as feeding it whole.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../zone/src/ingress/clienthello.rs"]
#[allow(dead_code)]
mod clienthello;

use clienthello::{Parsed, Reader, parse};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Parsed::Sni(name) = &whole {
        assert!(!name.is_empty() && name.len() <= 253, "{name:?}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)),
            "{name:?}"
        );
    }

    // Prefixes: every one for small inputs, a spread of them otherwise (all would be quadratic).
    let step = (data.len() / 256).max(1);
    for end in (0..data.len()).step_by(step) {
        let prefix = parse(&data[..end]);
        assert!(
            prefix == Parsed::NeedMore || prefix == whole,
            "prefix of {end} bytes gave {prefix:?}, the whole input {whole:?}"
        );
    }

    // Pieces whose sizes come from the input itself, so the fuzzer explores the splits too.
    let mut reader = Reader::new();
    let mut last = Parsed::NeedMore;
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let size = usize::from(data[i % data.len()] % 17) + 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        last = reader.push(piece);
        rest = tail;
        i += 1;
    }
    assert_eq!(last, whole, "fed in pieces");
});
