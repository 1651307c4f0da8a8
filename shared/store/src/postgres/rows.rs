//! Between resources and rows: a row keeps the document minus its metadata in `spec`, the
//! metadata in its own columns, and is decoded (and validated) back into a resource on read.

use std::collections::BTreeMap;

use atoll_model::{Resource, decode_stored, encode_value};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, Row};

use crate::rules::{stamped, timestamp};
use crate::{StoreError, Stored};

/// Document keys that the row keeps in columns of their own.
const META_KEYS: [&str; 6] = [
    "type",
    "name",
    "mesh",
    "labels",
    "creationTime",
    "modificationTime",
];

/// The `spec` column: the resource's document without its metadata.
pub(crate) fn content(resource: &Resource) -> Value {
    let mut document = encode_value(resource);
    if let Value::Object(map) = &mut document {
        for key in META_KEYS {
            map.remove(key);
        }
    }
    document
}

/// A whole stored resource, as `SELECT type, mesh, name, spec, labels, version, creation_time,
/// modification_time` returns it.
pub(crate) struct ResourceRow {
    kind: String,
    mesh: String,
    name: String,
    spec: Value,
    labels: BTreeMap<String, String>,
    version: i64,
    creation_time: DateTime<Utc>,
    modification_time: DateTime<Utc>,
}

impl<'r> FromRow<'r, PgRow> for ResourceRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(ResourceRow {
            kind: row.try_get("type")?,
            mesh: row.try_get("mesh")?,
            name: row.try_get("name")?,
            spec: row.try_get::<Json<Value>, _>("spec")?.0,
            labels: row
                .try_get::<Json<BTreeMap<String, String>>, _>("labels")?
                .0,
            version: row.try_get("version")?,
            creation_time: row.try_get("creation_time")?,
            modification_time: row.try_get("modification_time")?,
        })
    }
}

impl ResourceRow {
    pub(crate) fn into_stored(self) -> Result<Stored, StoreError> {
        let corrupt = |why: String| {
            StoreError::Corrupt(format!(
                "{} {:?} in mesh {:?}: {why}",
                self.kind, self.name, self.mesh
            ))
        };
        let Value::Object(fields) = &self.spec else {
            return Err(corrupt("spec is not a JSON object".to_string()));
        };
        let mut document = Map::new();
        document.insert("type".into(), Value::from(self.kind.as_str()));
        document.insert("name".into(), Value::from(self.name.as_str()));
        if !self.mesh.is_empty() {
            document.insert("mesh".into(), Value::from(self.mesh.as_str()));
        }
        if !self.labels.is_empty() {
            let labels = self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
            document.insert("labels".into(), Value::Object(labels.collect()));
        }
        document.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        let resource =
            decode_stored(Value::Object(document)).map_err(|err| corrupt(err.to_string()))?;
        let version = u64::try_from(self.version)
            .map_err(|_| corrupt(format!("negative version {}", self.version)))?;
        Ok(Stored {
            resource: stamped(
                resource,
                timestamp(self.creation_time),
                timestamp(self.modification_time),
            ),
            version,
        })
    }
}

/// One row of a list: the match count, and a resource unless the page is empty.
pub(crate) struct PageRow {
    pub(crate) total: i64,
    pub(crate) resource: Option<ResourceRow>,
}

impl<'r> FromRow<'r, PgRow> for PageRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let total = row.try_get("total")?;
        // The page is joined to the count, so an empty page is one row of NULLs.
        let kind: Option<String> = row.try_get("type")?;
        let resource = match kind {
            Some(_) => Some(ResourceRow::from_row(row)?),
            None => None,
        };
        Ok(PageRow { total, resource })
    }
}
