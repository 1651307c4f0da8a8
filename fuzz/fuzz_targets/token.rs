//! Any bytes as a token presented to the DP server or the API: verification never panics, never
//! accepts a token it did not issue, and accepts a changed copy of a token it did issue only
//! when the change left the token as it was.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use atoll_auth::keyring::SecretEntry;
use atoll_auth::{DataplaneClaims, Keyring, ProxyType, Purpose, Standard};
use libfuzzer_sys::fuzz_target;

fn keyring() -> &'static (Keyring, String) {
    static RING: OnceLock<(Keyring, String)> = OnceLock::new();
    RING.get_or_init(|| {
        let key = atoll_auth::keys::generate_pem().expect("a key");
        let ring = Keyring::build([
            SecretEntry {
                kind: atoll_model::Kind::Secret,
                mesh: Some("default"),
                name: "dataplane-token-signing-key-default-1",
                data: key.as_bytes(),
            },
            SecretEntry {
                kind: atoll_model::Kind::GlobalSecret,
                mesh: None,
                name: "user-token-signing-key-1",
                data: key.as_bytes(),
            },
        ]);
        let claims = DataplaneClaims {
            name: "web-1".into(),
            mesh: "default".into(),
            tags: Default::default(),
            proxy_type: ProxyType::Dataplane,
            standard: Standard::new(1_700_000_000, Duration::from_secs(3600)),
        };
        let token = ring
            .issue(&Purpose::Dataplane("default".into()), &claims)
            .expect("a token");
        (ring, token)
    })
}

fuzz_target!(|data: &[u8]| {
    let (ring, valid) = keyring();
    let now = 1_700_000_100;
    let text = String::from_utf8_lossy(data);
    assert!(ring.verify_dataplane(&text, now).is_err());
    assert!(ring.verify_user(&text, now).is_err());
    assert!(ring.verify_zone(&text, now).is_err());

    // The valid token with the input XORed over it, from an offset the input chooses.
    let Some((&offset, flips)) = data.split_first() else {
        return;
    };
    let mut changed = valid.clone().into_bytes();
    let start = usize::from(offset) * changed.len() / 256;
    for (byte, flip) in changed[start..].iter_mut().zip(flips) {
        *byte ^= flip;
    }
    if let Ok(changed) = String::from_utf8(changed)
        && ring.verify_dataplane(&changed, now).is_ok()
    {
        assert_eq!(&changed, valid, "a changed token was accepted");
    }
});
