//! Between resources and rows: a row keeps the document minus its metadata in `spec`, the
//! metadata in its own columns, and is decoded (and validated) back into a resource on read.

use std::collections::BTreeMap;

use atoll_model::{Kind, assemble_document, decode_stored};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, Row};

use crate::rules::{stamped, timestamp};
use crate::{StoreError, Stored};

/// A whole stored resource, as `SELECT type, mesh, name, spec, labels, version, creation_time,
/// modification_time, trace_context` returns it.
pub(crate) struct ResourceRow {
    kind: String,
    mesh: String,
    name: String,
    spec: Value,
    labels: BTreeMap<String, String>,
    version: i64,
    creation_time: DateTime<Utc>,
    modification_time: DateTime<Utc>,
    trace: Option<String>,
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
            trace: row.try_get("trace_context")?,
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
        let kind: Kind = self
            .kind
            .parse()
            .map_err(|e: atoll_model::UnknownKind| corrupt(e.to_string()))?;
        let mesh = (!self.mesh.is_empty()).then_some(self.mesh.as_str());
        let document = assemble_document(kind, &self.name, mesh, &self.labels, fields);
        let mut resource = decode_stored(document).map_err(|err| corrupt(err.to_string()))?;
        resource.meta.trace = self.trace;
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
