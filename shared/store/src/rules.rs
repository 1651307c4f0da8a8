//! The write semantics both stores share, so that they answer the same write the same way:
//! preconditions, what counts as a change, server timestamps, and no status where the document
//! has no place for one.

use atoll_model::{Layout, Resource};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::{Key, Precondition, StoreError};

/// Whether `expect` allows writing over what is stored (`existing`: its version, if any).
pub(crate) fn check(
    key: &Key,
    existing: Option<u64>,
    expect: Precondition,
) -> Result<(), StoreError> {
    match (existing, expect) {
        (_, Precondition::Any) | (None, Precondition::Absent) => Ok(()),
        (Some(_), Precondition::Absent) => Err(StoreError::AlreadyExists {
            kind: key.kind,
            name: key.name.clone(),
        }),
        (None, Precondition::Version(_)) => Err(not_found(key)),
        (Some(actual), Precondition::Version(expected)) if actual == expected => Ok(()),
        (Some(actual), Precondition::Version(expected)) => Err(StoreError::Conflict {
            kind: key.kind,
            name: key.name.clone(),
            expected,
            actual,
        }),
    }
}

pub(crate) fn not_found(key: &Key) -> StoreError {
    StoreError::NotFound {
        kind: key.kind,
        name: key.name.clone(),
    }
}

/// RFC 3339 in UTC with microseconds (PostgreSQL's precision), e.g. `2026-11-22T21:55:52.123456Z`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The resource as a store keeps it: the caller's timestamps are dropped (the store sets
/// them), and so is a status on an inline-layout type, which its document cannot carry.
pub(crate) fn incoming(mut resource: Resource) -> Resource {
    resource.meta.creation_time = None;
    resource.meta.modification_time = None;
    if resource.kind().layout() == Layout::Inline {
        resource.status = None;
    }
    resource
}

/// The resource with the store's timestamps.
pub(crate) fn stamped(mut resource: Resource, created: String, modified: String) -> Resource {
    resource.meta.creation_time = Some(created);
    resource.meta.modification_time = Some(modified);
    resource
}

/// Whether a write of `new` would change `old`: only content and labels count.
pub(crate) fn same_content(old: &Resource, new: &Resource) -> bool {
    old.spec == new.spec && old.status == new.status && old.meta.labels == new.meta.labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 22, 21, 55, 52)
            .single()
            .expect("valid date")
            + chrono::Duration::microseconds(123_456);
        assert_eq!(timestamp(at), "2026-11-22T21:55:52.123456Z");
    }
}
