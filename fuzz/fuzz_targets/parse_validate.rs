//! Any bytes through the parse + validate path: never a panic, and every accepted resource
//! survives an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for doc in atoll_model::parse_documents(text) {
        if let Ok(resource) = doc.outcome {
            let again = atoll_model::decode_value(atoll_model::encode_value(&resource));
            assert_eq!(again.as_ref(), Ok(&resource), "accepted resource must re-decode unchanged");
            let yaml = atoll_model::to_yaml(&resource);
            let docs = atoll_model::parse_documents(&yaml);
            assert_eq!(docs.len(), 1);
            assert_eq!(docs[0].outcome.as_ref(), Ok(&resource), "YAML round trip:\n{yaml}");
        }
    }
});
